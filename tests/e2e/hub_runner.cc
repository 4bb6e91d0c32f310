#include "tests/e2e/hub_runner.h"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include <openssl/sha.h>

namespace hsync::e2e {

using hsync::testing::ChildProcess;

namespace {

// The hub's [nodes] value for a token: "sha256:" + hex of SHA-256(token).
std::string TokenHash(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  std::string hex = "sha256:";
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 15]);
  }
  return hex;
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeE2eChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // gRPC also takes this as the time one connection attempt may last.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::unique_ptr<HubRunner>> HubRunner::Start(HubRunnerOptions options) {
  std::unique_ptr<HubRunner> hub(new HubRunner());
  hub->options_ = std::move(options);
  hub->dir_ = hsync::testing::MakeTempDir("e2e-hub");
  hub->port_ = hsync::testing::PickFreePort();
  hub->channel_ = MakeE2eChannel(absl::StrCat("unix:", hub->operator_socket()));
  if (absl::Status status = hub->WriteConfig(); !status.ok()) return status;
  if (absl::Status status = hub->Launch(); !status.ok()) return status;
  return hub;
}

HubRunner::~HubRunner() { Kill(); }

std::string HubRunner::target() const { return absl::StrCat("127.0.0.1:", port_); }

int HubRunner::pid() { return Running() ? process_->pid() : -1; }

bool HubRunner::Running() { return process_.has_value() && process_->Running(); }

absl::Status HubRunner::WriteConfig() {
  const std::string key_file = absl::StrCat(dir_, "/parent-api-key");
  std::ofstream(key_file) << options_.parent_api_key << "\n";
  ::chmod(key_file.c_str(), 0600);
  std::string text = absl::StrCat(
      "log_level = \"", options_.log_level, "\"\nlisten = \"", target(), "\"\nplaintext = true\n",
      "operator_socket = \"", operator_socket(), "\"\n",
      "[parent]\nurl = \"", options_.parent_url, "\"\napi_key_file = \"", key_file,
      "\"\ntimeout = \"", options_.parent_timeout, "\"\nconnect_timeout = \"1s\"\n",
      options_.parent_toml, "\n",
      "[journal]\npath = \"", dir_, "/journal.db\"\n",
      "[apply]\ninterval = \"", options_.apply_interval, "\"\nmax_apply_delay = \"",
      options_.max_apply_delay, "\"\nmax_patches_per_minute = ", options_.max_patches_per_minute,
      "\nurgent_horizon = \"", options_.urgent_horizon, "\"\n",
      "[roster]\npoll_interval = \"", options_.roster_poll_interval, "\"\nmax_list_share = ",
      options_.max_list_share, "\n",
      "[metrics]\nlisten = \"", options_.metrics_listen, "\"\n[nodes]\n");
  for (const auto& [node, token] : options_.node_tokens) {
    absl::StrAppend(&text, node, " = \"", TokenHash(token), "\"\n");
  }
  const std::string path = absl::StrCat(dir_, "/hub.toml");
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status HubRunner::Launch() {
  absl::StatusOr<ChildProcess> process = ChildProcess::Spawn(
      {hsync::testing::BuiltBinary("hiddify-sync-hub"), "--config", absl::StrCat(dir_, "/hub.toml")},
      absl::StrCat(dir_, "/hub.log"));
  if (!process.ok()) return process.status();
  process_.emplace(*std::move(process));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (!process_->Running()) {
      return absl::InternalError(absl::StrCat("hub exited during start; log:\n", LogTail()));
    }
    // A fresh channel per attempt: one that saw "connection refused" while
    // the hub was starting kept failing for seconds after it listened.
    channel_ = MakeE2eChannel(absl::StrCat("unix:", operator_socket()));
    if (Status(absl::Milliseconds(500)).ok()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("hub not answering after 30 s; log:\n", LogTail()));
}

void HubRunner::Kill() {
  if (process_.has_value() && process_->Running()) (void)process_->Signal(SIGKILL);
  process_.reset();
}

absl::Status HubRunner::Restart() {
  Kill();
  return Launch();
}

absl::StatusOr<hiddify_sync::v1::HubStatus> HubRunner::Status(absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  hiddify_sync::v1::HubStatus status;
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel_);
  const grpc::Status rpc = stub->GetStatus(&context, hiddify_sync::v1::GetStatusRequest(), &status);
  if (!rpc.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(rpc.error_code()),
                        absl::StrCat("hub GetStatus: ", rpc.error_message()));
  }
  return status;
}

std::string HubRunner::LogTail(size_t bytes) const {
  std::ifstream in(absl::StrCat(dir_, "/hub.log"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() <= bytes ? all : all.substr(all.size() - bytes);
}

}  // namespace hsync::e2e
