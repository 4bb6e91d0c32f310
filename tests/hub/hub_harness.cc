#include "tests/hub/hub_harness.h"

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/proto_time.h"
#include "hub/service/node_auth.h"
#include "tests/hub/grpc_probes.h"

namespace hsync::hub::testing {

using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::ReportAck;
using hiddify_sync::v1::UsageReport;
using hsync::testing::ChildProcess;

std::map<std::string, std::string> MakeNodeTokens(int n) {
  absl::BitGen rng;
  std::map<std::string, std::string> tokens;
  for (int i = 0; i < n; ++i) {
    tokens[absl::StrCat("node-", i)] =
        absl::StrFormat("token-of-node-%d-%016x", i, absl::Uniform<uint64_t>(rng));
  }
  return tokens;
}

std::shared_ptr<grpc::Channel> MakeHubChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Reconnect quickly after a hub restart.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);  // also the connect timeout
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

void AddBearer(grpc::ClientContext* context, const std::string& token) {
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

std::string TestUserUuid(int i, int salt) {
  return absl::StrFormat("%08x-0000-4000-8000-%012x", salt, i);
}

int RunHubCommand(const std::vector<std::string>& args, std::string* output,
                  const std::vector<std::string>& prefix) {
  static std::atomic<int> runs{0};
  const std::string dir = hsync::testing::MakeTempDir("hub_command");
  ::chmod(dir.c_str(), 0777);  // an unprivileged run writes its output here too
  const std::string log = absl::StrCat(dir, "/out-", ++runs);
  std::vector<std::string> argv = prefix;
  argv.push_back(hsync::testing::BuiltBinary("hiddify-sync-hub"));
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<hsync::testing::ChildProcess> process =
      hsync::testing::ChildProcess::Spawn(argv, log);
  if (!process.ok()) {
    *output = absl::StrCat("cannot run the hub: ", process.status().ToString());
    return -1;
  }
  absl::StatusOr<int> code = process->Wait(absl::Seconds(30));
  *output = hsync::testing::ReadFileContents(log);
  if (!code.ok()) {
    absl::StrAppend(output, "\n(", code.status().ToString(), ")");
    return -1;
  }
  return *code;
}

absl::StatusOr<std::unique_ptr<HubProcess>> HubProcess::Start(HubSetup setup) {
  std::unique_ptr<HubProcess> hub(new HubProcess());
  hub->setup_ = std::move(setup);
  hub->dir_ = hsync::testing::MakeTempDir("hub");
  hub->config_path_ = absl::StrCat(hub->dir_, "/hub.toml");
  hub->port_ = hsync::testing::PickFreePort();
  hub->channel_ = MakeHubChannel(hub->target());
  hub->operator_channel_ = MakeHubChannel(absl::StrCat("unix:", hub->operator_socket()));
  if (absl::Status launched = hub->Launch(); !launched.ok()) return launched;
  return hub;
}

HubProcess::~HubProcess() { Kill(); }

std::string HubProcess::target() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status HubProcess::WriteConfig() {
  const std::string key_file = absl::StrCat(dir_, "/parent_api_key");
  {
    std::ofstream key(key_file);
    key << setup_.parent_api_key << "\n";
  }
  ::chmod(key_file.c_str(), 0600);
  std::string text = absl::StrCat(
      "log_level = \"", setup_.log_level, "\"\n", "listen = \"", target(), "\"\n",
      "operator_socket = \"", operator_socket(), "\"\n",
      "plaintext = true\n\n[parent]\nurl = \"", setup_.parent_url, "\"\napi_key_file = \"",
      key_file, "\"\ntimeout = \"", setup_.parent_timeout, "\"\nconnect_timeout = \"1s\"\n", setup_.parent_toml, "\n",
      "[journal]\npath = \"", dir_, "/journal.db\"\n", setup_.journal_toml, "\n",
      "[apply]\ninterval = \"",
      setup_.apply_interval, "\"\nmax_apply_delay = \"", setup_.max_apply_delay,
      "\"\nurgent_margin_bytes = ", setup_.urgent_margin_bytes,
      "\nmax_patches_per_minute = ", setup_.max_patches_per_minute, "\n\n",
      "[roster]\npoll_interval = \"", setup_.poll_interval, "\"\nusage_interval = \"",
      setup_.usage_interval, "\"\n\n[metrics]\nlisten = \"",
      setup_.metrics_listen, "\"\n\n[nodes]\n");
  for (const auto& [node, token] : setup_.node_tokens) {
    absl::StrAppend(&text, node, " = \"", TokenHash(token), "\"\n");
  }
  absl::StrAppend(&text, setup_.extra_toml);
  std::ofstream out(config_path_);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", config_path_));
  return absl::OkStatus();
}

absl::Status HubProcess::Launch() {
  if (absl::Status written = WriteConfig(); !written.ok()) return written;
  const size_t log_offset = ReadLog().size();
  absl::StatusOr<ChildProcess> process = ChildProcess::Spawn(
      {hsync::testing::BuiltBinary("hiddify-sync-hub"), "--config", config_path_},
      absl::StrCat(dir_, "/hub.log"));
  if (!process.ok()) return process.status();
  process_.emplace(*std::move(process));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (!process_->Running()) {
      return absl::InternalError(absl::StrCat("hub exited during start; log:\n", ReadLog()));
    }
    // Probing before the hub listens leaves the channel in a connect backoff
    // for seconds; the start summary (logged at info and debug levels) says
    // when it listens.
    if (ReadLog().find("serving on", log_offset) == std::string::npos) {
      absl::SleepFor(absl::Milliseconds(20));
      continue;
    }
    absl::StatusOr<int> health = HealthCheck(channel_, "", absl::Milliseconds(500));
    if (health.ok() && *health == probes::HealthCheckResponse::SERVING) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("hub not SERVING after 30 s; log:\n", ReadLog()));
}

absl::Status HubProcess::Restart() {
  if (Running()) return absl::FailedPreconditionError("hub still running");
  process_.reset();
  return Launch();
}

void HubProcess::Kill() {
  if (process_.has_value() && process_->Running()) (void)process_->Signal(SIGKILL, absl::Seconds(10));
  process_.reset();
}

absl::StatusOr<int> HubProcess::Terminate(absl::Duration timeout) {
  if (!process_.has_value()) return absl::FailedPreconditionError("hub not running");
  absl::StatusOr<int> code = process_->Signal(SIGTERM, timeout);
  if (code.ok()) process_.reset();
  return code;
}

bool HubProcess::Signal(int signal) {
  return process_.has_value() && ::kill(process_->pid(), signal) == 0;
}

bool HubProcess::Running() { return process_.has_value() && process_->Running(); }

std::string HubProcess::ReadLog() const {
  std::ifstream in(absl::StrCat(dir_, "/hub.log"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> HubProcess::Stub() const {
  return hiddify_sync::v1::SyncHub::NewStub(channel_);
}

std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> HubProcess::OperatorStub() const {
  return hiddify_sync::v1::SyncHub::NewStub(operator_channel_);
}

absl::StatusOr<HubStatus> HubProcess::Status() const {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  HubStatus status;
  grpc::Status rpc = OperatorStub()->GetStatus(&context, hiddify_sync::v1::GetStatusRequest(), &status);
  if (!rpc.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(rpc.error_code()), rpc.error_message());
  }
  return status;
}

bool HubProcess::WaitUntilApplied(absl::Duration timeout) {
  return hsync::testing::WaitFor(
      [&] {
        absl::StatusOr<HubStatus> status = Status();
        return status.ok() && status->pending_bytes() == 0 && status->pending_users() == 0;
      },
      timeout);
}

SimulatedChild::SimulatedChild(std::string node_id, std::string token,
                               std::shared_ptr<grpc::Channel> channel)
    : node_id_(std::move(node_id)),
      token_(std::move(token)),
      stub_(hiddify_sync::v1::SyncHub::NewStub(channel)) {
  NewStream();
}

void SimulatedChild::NewStream() {
  stream_id_ = absl::Uniform<uint64_t>(absl::IntervalClosed, rng_, 1, UINT64_MAX);
  seq_ = 0;
}

UsageReport SimulatedChild::Next(const Deltas& deltas) {
  UsageReport report;
  report.set_node_id(node_id_);
  report.set_stream_id(stream_id_);
  report.set_seq(++seq_);
  for (const auto& [uuid, bytes] : deltas) {
    auto* usage = report.add_usages();
    usage->set_uuid(uuid);
    usage->set_bytes(bytes);
  }
  *report.mutable_collected_at() = ToProtoTimestamp(absl::Now());
  return report;
}

grpc::Status SimulatedChild::Send(const UsageReport& report, ReportAck* ack, absl::Duration timeout) {
  grpc::ClientContext context;
  AddBearer(&context, token_);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return stub_->ReportUsage(&context, report, ack);
}

absl::StatusOr<uint64_t> SimulatedChild::SendUntilAcked(const UsageReport& report,
                                                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  grpc::Status last;
  while (absl::Now() < deadline) {
    ReportAck ack;
    last = Send(report, &ack);
    if (last.ok()) return ack.acked_seq();
    if (last.error_code() != grpc::StatusCode::UNAVAILABLE &&
        last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::Status(static_cast<absl::StatusCode>(last.error_code()), last.error_message());
}

absl::StatusOr<uint64_t> SimulatedChild::Report(const Deltas& deltas) {
  return SendUntilAcked(Next(deltas));
}

RosterFollower::RosterFollower(hiddify_sync::v1::SyncHub::Stub* stub, const std::string& node_id,
                               const std::string& token, bool keep_users)
    : RosterFollower(stub, node_id, token, hiddify_sync::v1::WatchRosterRequest(), keep_users) {}

RosterFollower::RosterFollower(hiddify_sync::v1::SyncHub::Stub* stub, const std::string& node_id,
                               const std::string& token,
                               const hiddify_sync::v1::WatchRosterRequest& request, bool keep_users,
                               int cancel_after_chunks)
    : keep_users_(keep_users), cancel_after_chunks_(cancel_after_chunks) {
  AddBearer(&context_, token);
  request_ = request;
  request_.set_node_id(node_id);
  state_.version = request.have_version();  // deltas follow the version held
  stub->async()->WatchRoster(&context_, &request_, this);
  StartRead(&update_);
  StartCall();
}

RosterFollower::~RosterFollower() {
  context_.TryCancel();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(+[](State* state) { return state->done; }, &state_));
}

void RosterFollower::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  {
    absl::MutexLock lock(&mu_);
    ++state_.updates;
    state_.bytes_received += update_.ByteSizeLong();
    state_.epoch = update_.roster_epoch();
    if (state_.updates == 1) {
      state_.first_full = update_.full();
      state_.first_chunk_index = update_.chunk_index();
    }
    const bool chunked = update_.full() && update_.chunk_count() > 0;
    if (chunked) {
      ++state_.chunks;
      state_.chunk_count = update_.chunk_count();
      state_.last_chunk_index = update_.chunk_index();
      if (update_.chunk_index() == 0) {
        state_.by_uuid.clear();
        uuids_.clear();
      }
      if (update_.chunk_index() + 1 == update_.chunk_count()) ++state_.full_updates;
    } else if (update_.full()) {
      ++state_.full_updates;
      state_.by_uuid.clear();
      uuids_.clear();
    } else if (update_.version() != state_.version + 1) {
      ++state_.gaps;
    } else {
      ++state_.deltas;
    }
    state_.version = update_.version();
    for (hiddify_sync::v1::User& user : *update_.mutable_upserts()) {
      if (keep_users_) {
        std::string uuid = user.uuid();
        state_.by_uuid[uuid] = std::move(user);
      } else {
        uuids_.insert(user.uuid());
      }
    }
    for (const auto& usage : update_.usage_updates()) {
      auto it = state_.by_uuid.find(usage.uuid());
      if (it == state_.by_uuid.end()) continue;
      it->second.set_current_usage_bytes(usage.current_usage_bytes());
      it->second.set_last_online(usage.last_online());
    }
    state_.usage_updates += update_.usage_updates_size();
    for (const std::string& uuid : update_.removed_uuids()) {
      state_.by_uuid.erase(uuid);
      uuids_.erase(uuid);
    }
    state_.users = keep_users_ ? state_.by_uuid.size() : uuids_.size();
  }
  update_.Clear();
  if (cancel_after_chunks_ > 0 && Snapshot().chunks >= cancel_after_chunks_) {
    context_.TryCancel();
    return;
  }
  StartRead(&update_);
}

void RosterFollower::OnDone(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  state_.done = true;
  state_.status = status;
}

RosterFollower::State RosterFollower::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

bool RosterFollower::WaitUntil(const std::function<bool(const State&)>& predicate,
                               absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return predicate(state_); };
  return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

}  // namespace hsync::hub::testing
