#include "hub/ops/status_command.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config_reader.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "hub/config/hub_config.h"
#include "hub/ops/status_summary.h"

namespace hsync::hub {
namespace {

constexpr int kExitDown = static_cast<int>(HubHealth::kDown);

struct StatusOptions {
  std::string config_path = kDefaultHubConfigPath;
  std::string socket;      // overrides the config's operator_socket
  std::string address;     // TCP instead of the operator socket
  std::string token_file;  // a node token, for TCP
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  absl::Duration timeout = absl::Seconds(10);
};

bool ParseArgs(const std::vector<std::string>& args, StatusOptions* o, std::string* error) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string* into) {
      if (i + 1 >= args.size()) {
        *error = absl::StrCat(arg, " needs a value");
        return false;
      }
      *into = args[++i];
      return true;
    };
    std::string timeout;
    if (arg == "--config") {
      if (!value(&o->config_path)) return false;
    } else if (arg == "--socket") {
      if (!value(&o->socket)) return false;
    } else if (arg == "--address") {
      if (!value(&o->address)) return false;
    } else if (arg == "--token-file") {
      if (!value(&o->token_file)) return false;
    } else if (arg == "--ca") {
      if (!value(&o->ca_file)) return false;
    } else if (arg == "--cert") {
      if (!value(&o->cert_file)) return false;
    } else if (arg == "--key") {
      if (!value(&o->key_file)) return false;
    } else if (arg == "--timeout") {
      if (!value(&timeout)) return false;
      absl::StatusOr<absl::Duration> parsed = ParseConfigDuration(timeout);
      if (!parsed.ok() || *parsed <= absl::ZeroDuration()) {
        *error = absl::StrCat("--timeout: invalid duration \"", timeout, "\"");
        return false;
      }
      o->timeout = *parsed;
    } else {
      *error = absl::StrCat("unknown argument \"", arg, "\"");
      return false;
    }
  }
  if (o->cert_file.empty() != o->key_file.empty()) {
    *error = "--cert and --key go together";
    return false;
  }
  if (!o->token_file.empty() && o->address.empty()) {
    *error = "--token-file goes with --address (the operator socket needs no token)";
    return false;
  }
  if (!o->socket.empty() && !o->address.empty()) {
    *error = "--socket and --address exclude each other";
    return false;
  }
  return true;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The address to dial for `listen`, and whether it is on this host.
std::string DialAddress(const std::string& listen, bool* loopback) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(listen, &host, &port)) {
    *loopback = false;
    return listen;
  }
  if (host == "0.0.0.0" || host == "::" || host == "0:0:0:0:0:0:0:0") host = "127.0.0.1";
  *loopback = IsLoopbackHost(host);
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

std::shared_ptr<grpc::ChannelCredentials> Credentials(const HubConfig& config,
                                                      const StatusOptions& o) {
  if (config.plaintext) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  std::vector<std::string> roots = {config.tls.cert_file, config.tls.client_ca_file, o.ca_file};
  if (!config.tls.cert_file.empty()) {
    roots.push_back(
        (std::filesystem::path(config.tls.cert_file).parent_path() / "ca.pem").string());
  }
  for (const std::string& file : roots) {
    if (file.empty() || !std::filesystem::exists(file)) continue;
    absl::StrAppend(&ssl.pem_root_certs, ReadWholeFile(file), "\n");
  }
  if (!o.cert_file.empty()) {
    ssl.pem_cert_chain = ReadWholeFile(o.cert_file);
    ssl.pem_private_key = ReadWholeFile(o.key_file);
  }
  return grpc::SslCredentials(ssl);
}

// Why the operator socket cannot be used, or "" when it looks usable.
std::string SocketProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::StrCat("the operator socket ", path,
                          " does not exist: is the hub running? (systemctl status hiddify-sync-hub)");
    }
    if (errno == EACCES) {
      return absl::StrCat("permission denied on the operator socket ", path,
                          ": it is root-only; run as root (sudo hiddify-sync-hub status)");
    }
    return absl::StrCat("cannot use the operator socket ", path, ": ", std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return absl::StrCat(path, " is not a socket (see operator_socket)");
  if (::access(path.c_str(), R_OK | W_OK) != 0) {
    return absl::StrCat("permission denied on the operator socket ", path,
                        ": it is root-only; run as root (sudo hiddify-sync-hub status)");
  }
  return "";
}

}  // namespace

int RunHubStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  StatusOptions options;
  std::string error;
  if (!ParseArgs(args, &options, &error)) {
    err << "hiddify-sync-hub status: " << error << "\n"
        << "usage: hiddify-sync-hub status [--config PATH] [--socket PATH] [--timeout 10s]\n"
        << "       hiddify-sync-hub status [--config PATH] --address HOST:PORT --token-file FILE\n"
        << "                               [--ca FILE] [--cert FILE --key FILE] [--timeout 10s]\n";
    return kExitDown;
  }
  absl::StatusOr<HubConfig> config = LoadHubConfig(options.config_path);
  if (!config.ok()) {
    err << "hiddify-sync-hub status: cannot read the configuration: " << config.status().message()
        << "\n";
    if (::geteuid() != 0) err << "  the configuration and its secrets are root-only: run as root\n";
    return kExitDown;
  }
  const bool over_tcp = !options.address.empty();
  std::string token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> read = ReadSecretFile(options.token_file);
    if (!read.ok()) {
      err << "hiddify-sync-hub status: --token-file: " << read.status().message() << "\n";
      return kExitDown;
    }
    token = *std::move(read);
  }
  std::string target;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  if (over_tcp) {
    bool loopback = false;
    target = DialAddress(options.address, &loopback);
    if (!config->plaintext && loopback) channel_args.SetSslTargetNameOverride("localhost");
    credentials = Credentials(*config, options);
  } else {
    const std::string path = options.socket.empty() ? config->operator_socket : options.socket;
    if (path.empty()) {
      err << "hiddify-sync-hub status: operator_socket is off (\"\") in " << options.config_path
          << ": set it, or ask over TCP with --address HOST:PORT --token-file FILE\n";
      return kExitDown;
    }
    if (std::string problem = SocketProblem(path); !problem.empty()) {
      out << "hiddify-sync-hub at " << path << ": DOWN (" << problem << ")\n";
      return kExitDown;
    }
    target = absl::StrCat("unix:", path);
    credentials = grpc::InsecureChannelCredentials();
  }
  auto channel = grpc::CreateCustomChannel(target, credentials, channel_args);
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  hiddify_sync::v1::HubStatus status;
  const grpc::Status rpc = stub->GetStatus(&context, hiddify_sync::v1::GetStatusRequest(), &status);
  if (!rpc.ok()) {
    out << "hiddify-sync-hub at " << target << ": DOWN (" << rpc.error_message() << ")\n";
    if (rpc.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      out << "  the hub refused the call: over TCP every call needs a valid node token "
             "(--token-file FILE); or run as root without --address to use the operator socket\n";
    } else if (rpc.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      out << "  too many failed authentications from this address; wait a minute, or use the "
             "operator socket (as root, without --address)\n";
    } else if (over_tcp && !config->plaintext && config->tls.require_client_cert &&
               options.cert_file.empty()) {
      out << "  the hub requires client certificates: pass --cert FILE --key FILE\n";
    }
    return kExitDown;
  }
  HubStatusThresholds thresholds;
  thresholds.max_apply_delay = config->apply.max_apply_delay;
  const absl::Time now = absl::Now();
  const HubVerdict verdict = JudgeHubStatus(status, now, thresholds);
  PrintHubStatus(status, verdict, now, out);
  return static_cast<int>(verdict.health);
}

}  // namespace hsync::hub
