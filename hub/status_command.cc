#include "hub/status_command.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config_reader.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "hub/hub_config.h"
#include "hub/status_summary.h"

namespace hsync::hub {
namespace {

constexpr int kExitDown = static_cast<int>(HubHealth::kDown);

struct StatusOptions {
  std::string config_path = kDefaultHubConfigPath;
  std::string address;  // overrides the config's listen
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
    } else if (arg == "--address") {
      if (!value(&o->address)) return false;
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

}  // namespace

int RunHubStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  StatusOptions options;
  std::string error;
  if (!ParseArgs(args, &options, &error)) {
    err << "hiddify-sync-hub status: " << error << "\n"
        << "usage: hiddify-sync-hub status [--config PATH] [--address HOST:PORT] [--ca FILE]\n"
        << "                               [--cert FILE --key FILE] [--timeout 10s]\n";
    return kExitDown;
  }
  absl::StatusOr<HubConfig> config = LoadHubConfig(options.config_path);
  if (!config.ok()) {
    err << "hiddify-sync-hub status: cannot read the configuration: " << config.status().message()
        << "\n";
    return kExitDown;
  }
  bool loopback = false;
  const std::string target = DialAddress(options.address.empty() ? config->listen : options.address,
                                         &loopback);
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  if (!config->plaintext && loopback) {
    channel_args.SetSslTargetNameOverride("localhost");
  }
  auto channel = grpc::CreateCustomChannel(target, Credentials(*config, options), channel_args);
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  hiddify_sync::v1::HubStatus status;
  const grpc::Status rpc = stub->GetStatus(&context, hiddify_sync::v1::GetStatusRequest(), &status);
  if (!rpc.ok()) {
    out << "hiddify-sync-hub at " << target << ": DOWN (" << rpc.error_message() << ")\n";
    if (rpc.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      out << "  the hub refused the call: status needs a loopback address (use --address "
             "127.0.0.1:PORT)\n";
    } else if (!config->plaintext && config->tls.require_client_cert && options.cert_file.empty()) {
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
