#include "tests/reporter/e2e_system.h"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "common/proto_time.h"
#include "hiddify_sync/v1/reporter_status.grpc.pb.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
namespace {

absl::StatusOr<std::map<std::string, uint64_t>> UsageOf(const std::string& database) {
  auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(database));
  if (!conn.ok()) return conn.status();
  auto rs = (*conn)->Query("SELECT uuid, current_usage FROM user");
  if (!rs.ok()) return rs.status();
  std::map<std::string, uint64_t> out;
  for (const auto& row : rs->rows) out[row[0].value_or("")] = std::stoull(row[1].value_or("0"));
  return out;
}

// What the hub's [nodes] holds for a token: "sha256:<hex of SHA-256(token)>".
std::string TokenHash(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  std::string out = "sha256:";
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// HubProcess

HubProcess::HubProcess(std::string parent_url, std::string parent_api_key,
                       std::map<std::string, std::string> node_tokens) {
  dir_ = MakeTempDir("e2e-hub");
  port_ = PickFreePort();
  const std::string key_file = dir_ + "/parent-api-key";
  std::ofstream(key_file) << parent_api_key << "\n";
  chmod(key_file.c_str(), 0600);
  std::ofstream config(dir_ + "/hub.toml");
  config << "log_level = \"info\"\nlisten = \"" << address() << "\"\nplaintext = true\n"
         << "operator_socket = \"" << dir_ << "/hub.sock\"\n"
         << "[parent]\nurl = \"" << parent_url << "\"\napi_key_file = \"" << key_file << "\"\n"
         << "[journal]\npath = \"" << dir_ << "/journal.db\"\n"
         << "[apply]\ninterval = \"200ms\"\nmax_apply_delay = \"1s\"\n"
         << "[roster]\npoll_interval = \"1s\"\n[metrics]\nlisten = \"\"\n[nodes]\n";
  for (const auto& [node, token] : node_tokens) {
    config << node << " = \"" << TokenHash(token) << "\"\n";
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // GetStatus needs no token only on the operator socket.
  channel_ = grpc::CreateCustomChannel("unix:" + dir_ + "/hub.sock",
                                       grpc::InsecureChannelCredentials(), args);
}

HubProcess::~HubProcess() {
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::Status HubProcess::Start() {
  auto process = ChildProcess::Spawn(
      {BuiltBinary("hiddify-sync-hub"), "--config", dir_ + "/hub.toml"}, dir_ + "/hub.log");
  if (!process.ok()) return process.status();
  process_ = std::make_unique<ChildProcess>(*std::move(process));
  if (!WaitFor([&] { return !process_->Running() || Status().ok(); }, absl::Seconds(30)) ||
      !process_->Running()) {
    return absl::UnavailableError(absl::StrCat("the hub did not come up; log:\n", Log()));
  }
  return absl::OkStatus();
}

void HubProcess::Kill() {
  if (process_ != nullptr && process_->Running()) (void)process_->Signal(SIGKILL);
  process_.reset();
}

bool HubProcess::Running() { return process_ != nullptr && process_->Running(); }

absl::StatusOr<hiddify_sync::v1::HubStatus> HubProcess::Status() {
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  hiddify_sync::v1::HubStatus status;
  grpc::Status rpc = stub->GetStatus(&context, hiddify_sync::v1::GetStatusRequest(), &status);
  if (!rpc.ok()) return absl::UnavailableError(rpc.error_message());
  return status;
}

std::string HubProcess::Log() const { return ReadFileOrEmpty(dir_ + "/hub.log"); }

// ---------------------------------------------------------------------------
// E2eSystem

absl::StatusOr<std::unique_ptr<E2eSystem>> E2eSystem::Start(E2eOptions options) {
  std::unique_ptr<E2eSystem> sys(new E2eSystem());
  sys->options_ = options;
  PanelsimOptions parent;
  parent.database = UniqueDatabaseName("e2e_parent");
  parent.demo_users = options.parent_users;
  auto parent_runner = PanelsimRunner::Start(parent);
  if (!parent_runner.ok()) return parent_runner.status();
  sys->parent_ = *std::move(parent_runner);

  PanelsimOptions child;
  child.database = UniqueDatabaseName("e2e_child");
  child.extra_args = {"--traffic-interval-ms", std::to_string(options.traffic_interval_ms),
                      "--traffic-users-per-tick", std::to_string(options.traffic_users_per_tick),
                      "--traffic-max-bytes", std::to_string(options.traffic_max_bytes),
                      "--traffic-rmw-gap-ms", std::to_string(options.traffic_rmw_gap_ms)};
  child.extra_args.insert(child.extra_args.end(), options.child_extra_args.begin(),
                          options.child_extra_args.end());
  auto child_runner = PanelsimRunner::Start(child);
  if (!child_runner.ok()) return child_runner.status();
  sys->child_ = *std::move(child_runner);
  if (absl::Status s = sys->SetTraffic(false); !s.ok()) return s;

  sys->hub_ = std::make_unique<HubProcess>(sys->parent_->base_url(), sys->parent_->api_key(),
                                           std::map<std::string, std::string>{{options.node_id, options.token}});
  if (absl::Status s = sys->hub_->Start(); !s.ok()) return s;

  ReporterSetup setup;
  setup.node_id = options.node_id;
  setup.hub_address = sys->hub_->address();
  setup.token = options.reporter_token.empty() ? options.token : options.reporter_token;
  setup.panel_db = sys->child_->options().database;
  setup.state_db = setup.panel_db + "_sync";
  setup.collect_extra = "min_report_bytes = 1\n";
  setup.apply_command = absl::StrCat(BuiltBinary("panelsim-ctl"), " --port ", sys->child_->port(),
                                     " apply_users --no-gui");
  setup.panel_address = absl::StrCat("127.0.0.1:", sys->child_->port());
  setup.apply_extra = options.reporter_apply_extra;
  setup.extra = options.reporter_extra;
  setup.metrics_listen = options.reporter_metrics_listen;
  sys->reporter_ = std::make_unique<ReporterProcess>(setup);
  if (absl::Status s = sys->reporter_->Start(); !s.ok()) return s;
  sys->status_channel_ =
      grpc::CreateChannel(sys->reporter_->status_address(), grpc::InsecureChannelCredentials());
  return sys;
}

E2eSystem::~E2eSystem() {
  if (reporter_ != nullptr) reporter_->Kill();
  if (hub_ != nullptr) hub_->Kill();
}

absl::StatusOr<hiddify_sync::v1::ReporterStatusReply> E2eSystem::ReporterStatus() {
  auto stub = hiddify_sync::v1::ReporterStatus::NewStub(status_channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  hiddify_sync::v1::ReporterStatusReply reply;
  grpc::Status rpc = stub->GetStatus(&context, hiddify_sync::v1::GetReporterStatusRequest(), &reply);
  if (!rpc.ok()) return absl::UnavailableError(rpc.error_message());
  return reply;
}

absl::StatusOr<std::map<std::string, uint64_t>> E2eSystem::ParentUsage() {
  return UsageOf(parent_->options().database);
}

absl::StatusOr<std::map<std::string, uint64_t>> E2eSystem::ChildUsage() { return UsageOf(child_db()); }

std::string E2eSystem::ChildColumn(const std::string& uuid, const std::string& column) {
  auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(child_db()));
  if (!conn.ok()) return "";
  auto rs = (*conn)->Query(absl::StrCat("SELECT `", column, "` FROM user WHERE uuid = '", uuid, "'"));
  if (!rs.ok() || rs->rows.empty()) return "";
  return rs->rows[0][0].value_or("NULL");
}

absl::StatusOr<std::map<std::string, uint64_t>> E2eSystem::Generated() {
  auto response = child_->Control("GET", "/_sim/traffic");
  if (!response.ok()) return response.status();
  if (response->status != 200) return absl::InternalError(response->body);
  std::map<std::string, uint64_t> out;
  try {
    auto json = nlohmann::json::parse(response->body);
    for (auto& [uuid, bytes] : json.at("per_user").items()) out[uuid] = bytes.get<uint64_t>();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("bad /_sim/traffic answer: ", e.what()));
  }
  return out;
}

absl::Status E2eSystem::SetTraffic(bool enabled) {
  auto response = child_->Control("POST", "/_sim/traffic", enabled ? R"({"enabled":true})"
                                                                   : R"({"enabled":false})");
  if (!response.ok()) return response.status();
  if (response->status != 200) return absl::InternalError(response->body);
  return absl::OkStatus();
}

absl::Status E2eSystem::WaitRosterApplied(absl::Duration timeout) {
  auto parent_users = ParentUsage();
  if (!parent_users.ok()) return parent_users.status();
  const bool ok = WaitFor(
      [&] {
        auto child_users = ChildUsage();
        if (!child_users.ok()) return false;
        for (const auto& [uuid, bytes] : *parent_users) {
          if (!child_users->contains(uuid)) return false;
        }
        return true;
      },
      timeout);
  return ok ? absl::OkStatus()
            : absl::DeadlineExceededError(absl::StrCat("roster not applied; reporter log:\n",
                                                       reporter_->Log()));
}

absl::Status E2eSystem::WaitSettled(absl::Time since, absl::Duration timeout) {
  std::string last;
  const bool ok = WaitFor(
      [&] {
        auto r = ReporterStatus();
        if (!r.ok()) {
          last = absl::StrCat("reporter status: ", r.status().message());
          return false;
        }
        auto h = hub_->Status();
        if (!h.ok()) {
          last = absl::StrCat("hub status: ", h.status().message());
          return false;
        }
        last = absl::StrCat("last collect ", absl::FormatTime(FromProtoTimestamp(r->last_collect_at())),
                            ", seq written ", r->last_seq_written(), ", acked ", r->last_seq_acked(),
                            ", outbox ", r->outbox_reports(), ", hub pending ", h->pending_bytes());
        // Every report written (by a collect that started after `since`) is
        // acknowledged, and the hub has applied everything it acknowledged.
        return FromProtoTimestamp(r->last_collect_at()) > since &&
               r->last_seq_acked() >= r->last_seq_written() && r->outbox_reports() == 0 &&
               h->pending_bytes() == 0 && h->pending_users() == 0;
      },
      timeout);
  return ok ? absl::OkStatus()
            : absl::DeadlineExceededError(absl::StrCat("not settled: ", last, "\nreporter log tail:\n",
                                                       reporter_->Log().substr(
                                                           reporter_->Log().size() > 3000
                                                               ? reporter_->Log().size() - 3000
                                                               : 0)));
}

absl::Status E2eSystem::CheckExact(const std::map<std::string, uint64_t>& before) {
  auto after = ParentUsage();
  if (!after.ok()) return after.status();
  auto generated = Generated();
  if (!generated.ok()) return generated.status();
  uint64_t total_generated = 0, total_increase = 0;
  std::string differences;
  for (const auto& [uuid, now] : *after) {
    const uint64_t was = before.contains(uuid) ? before.at(uuid) : 0;
    const uint64_t increase = now - was;
    const uint64_t gen = generated->contains(uuid) ? generated->at(uuid) : 0;
    total_generated += gen;
    total_increase += increase;
    if (increase != gen) absl::StrAppend(&differences, "\n  ", uuid, ": generated ", gen, ", parent +", increase);
  }
  if (!differences.empty() || total_generated == 0) {
    std::string hub_view = "hub status unavailable";
    if (auto h = hub_->Status(); h.ok()) hub_view = h->ShortDebugString();
    return absl::InternalError(absl::StrCat("generated ", total_generated, " bytes, parent increased by ",
                                            total_increase, differences, "\nhub: ", hub_view));
  }
  return absl::OkStatus();
}

}  // namespace hsync::testing
