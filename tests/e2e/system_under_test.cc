#include "tests/e2e/system_under_test.h"

#include <cstdlib>
#include <functional>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/mariadb.h"
#include "common/panel_time.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "reporter/state/state_store.h"
#include "tests/support/test_mariadb.h"

namespace hsync::e2e {

using hsync::testing::PanelsimOptions;
using hsync::testing::PanelsimRunner;
using hsync::testing::SharedMariaDb;

uint64_t E2eSeed() {
  if (const char* env = std::getenv("HSYNC_E2E_SEED"); env != nullptr) {
    uint64_t seed = 0;
    if (absl::SimpleAtoi(env, &seed)) return seed;
  }
  return std::random_device{}() % 1'000'000'000;
}

absl::StatusOr<std::unique_ptr<SystemUnderTest>> SystemUnderTest::Start(SystemOptions options) {
  std::unique_ptr<SystemUnderTest> sut(new SystemUnderTest());
  sut->options_ = std::move(options);
  const SystemOptions& o = sut->options_;
  std::mt19937_64 rng(o.seed);

  PanelsimOptions parent;
  parent.database = hsync::testing::UniqueDatabaseName("parent");
  parent.demo_users = o.parent_users;
  parent.extra_args = {"--seed", std::to_string(o.seed)};
  if (o.parent_traffic.interval_ms > 0) {
    for (const std::string& arg :
         {std::string("--traffic-interval-ms"), std::to_string(o.parent_traffic.interval_ms),
          std::string("--traffic-users-per-tick"), std::to_string(o.parent_traffic.users_per_tick),
          std::string("--traffic-max-bytes"), std::to_string(o.parent_traffic.max_bytes),
          std::string("--traffic-rmw-gap-ms"), std::to_string(o.parent_traffic.rmw_gap_ms)}) {
      parent.extra_args.push_back(arg);
    }
  }
  const std::string parent_database = parent.database;
  ASSIGN_OR_RETURN(sut->parent_, PanelsimRunner::Start(std::move(parent)));
  RETURN_IF_ERROR(sut->SetParentTraffic(false));

  std::map<std::string, std::string> tokens;
  for (int i = 0; i < o.children; ++i) {
    tokens[absl::StrCat("child-", i + 1)] = absl::StrFormat("e2e-token-%d-%016x", i + 1, rng());
  }
  HubRunnerOptions hub;
  hub.parent_url = sut->parent_->base_url();
  hub.parent_api_key = sut->parent_->api_key();
  hub.node_tokens = tokens;
  hub.apply_interval = o.hub_apply_interval;
  hub.max_apply_delay = o.max_apply_delay;
  hub.roster_poll_interval = o.roster_poll_interval;
  if (o.parent_write == "database") {
    hub.parent_toml = absl::StrCat(
        "write = \"database\"\n\n[parent.database]\nsocket = \"", SharedMariaDb().socket_path(),
        "\"\nuser = \"root\"\ndatabase = \"", parent_database, "\"\nhub_database = \"",
        hsync::testing::UniqueDatabaseName("hubdb"), "\"\n");
  }
  ASSIGN_OR_RETURN(sut->hub_, HubRunner::Start(std::move(hub)));

  for (int i = 0; i < o.children; ++i) {
    ChildNodeOptions child;
    child.node_id = absl::StrCat("child-", i + 1);
    child.token = tokens[child.node_id];
    child.hub_port = sut->hub_->port();
    child.traffic = o.traffic;
    child.seed = rng() % 1'000'000'000 + 1;
    child.collect_interval = o.collect_interval;
    child.apply_duration_ms = o.child_apply_duration_ms;
    ASSIGN_OR_RETURN(auto node, ChildNode::Start(std::move(child)));
    sut->children_.push_back(std::move(node));
  }
  sut->child_day_offset_.assign(static_cast<size_t>(o.children), 0);
  sut->local_resets_.resize(static_cast<size_t>(o.children));
  if (absl::Status roster = sut->WaitRosterConverged(absl::Seconds(60)); !roster.ok()) {
    return absl::Status(roster.code(),
                        absl::StrCat("initial roster: ", roster.message(), "\n", sut->Diagnostics()));
  }
  return sut;
}

SystemUnderTest::~SystemUnderTest() {
  children_.clear();
  hub_.reset();
  parent_.reset();
}

absl::Status SystemUnderTest::RestartMariaDb(bool hard, absl::Duration down_for) {
  RETURN_IF_ERROR(SharedMariaDb().Stop(hard));
  absl::SleepFor(down_for);
  return SharedMariaDb().StartAgain();
}

absl::Status SystemUnderTest::ResetOnChild(int i, const std::string& uuid) {
  if (traffic_on_) RETURN_IF_ERROR(child(i).SetTraffic(false));
  absl::Status reset = ResetWithStateLocked(i, uuid);
  absl::Status resumed = traffic_on_ ? child(i).SetTraffic(true) : absl::OkStatus();
  return reset.ok() ? resumed : reset;
}

namespace {

// One user's counter on a child and the bytes in it no collect has seen
// yet, by the collector's rule (a reset it has not seen: everything).
struct ChildCounter {
  uint64_t current = 0;
  uint64_t unreported = 0;
  std::string last_reset;  // "" = NULL
};

absl::StatusOr<std::map<std::string, ChildCounter>> ReadChildCounters(
    MariaDbConnection& conn, const hsync::reporter::StateStore& state) {
  ASSIGN_OR_RETURN(ResultSet rows,
                   conn.Query(absl::StrCat("SELECT u.uuid, u.current_usage, u.last_reset_time, "
                                           "w.reported_bytes, w.last_reset_seen, w.user_id IS NOT NULL FROM user u LEFT JOIN ",
                                           state.Table("watermark"), " w ON w.user_id = u.id")));
  std::map<std::string, ChildCounter> counters;
  for (const auto& row : rows.rows) {
    ChildCounter& c = counters[row[0].value_or("")];
    (void)absl::SimpleAtoi(row[1].value_or("0"), &c.current);
    c.last_reset = row[2].value_or("");
    uint64_t reported = 0;
    (void)absl::SimpleAtoi(row[3].value_or("0"), &reported);
    const bool has_mark = row[5].value_or("0") == "1";
    const bool reset_unseen = has_mark && row[2].has_value() && row[2] != row[4];
    const uint64_t base = (reset_unseen || c.current < reported) ? 0 : reported;
    c.unreported = c.current - base;
  }
  return counters;
}

absl::Status ControlOk(PanelsimRunner& panel, const std::string& path, const std::string& body) {
  ASSIGN_OR_RETURN(auto response, panel.Control("POST", path, body));
  if (response.status != 200) {
    return absl::InternalError(absl::StrCat("POST ", path, " -> ", response.status, " ", response.body));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SystemUnderTest::ResetWithStateLocked(int i, const std::string& uuid) {
  const size_t c = static_cast<size_t>(i);
  PanelsimRunner& panel = child(i).panel();
  ASSIGN_OR_RETURN(auto conn,
                   MariaDbConnection::Connect(SharedMariaDb().Options(child(i).database())));
  Transaction tx(*conn);
  RETURN_IF_ERROR(tx.status());
  // Collects (and roster applies) serialize on this lock: none runs until the
  // reset is in, so the watermarks read here are the last ones before it.
  hsync::reporter::StateStore state(child(i).reporter().options().state_database,
                                    /*baseline_existing_usage=*/false);
  RETURN_IF_ERROR(state.LockMeta(*conn).status());
  // Traffic on this child is paused: one usage-task run moves every byte the
  // cores still count into the table, so nothing is added between the read
  // below and the resets (a byte added after a reset is not wiped by it).
  RETURN_IF_ERROR(ControlOk(panel, "/_sim/usage_task", "{}"));
  ASSIGN_OR_RETURN(const auto before, ReadChildCounters(*conn, state));

  // A new day on the child: its own periodic reset job runs (it resets every
  // weekly/monthly user whose period starts today, as the panel does) and
  // then the one user chosen.
  const int offset = ++child_day_offset_[c];
  const std::string today = FormatPanelDate(PanelToday() + offset);
  RETURN_IF_ERROR(ControlOk(panel, "/_sim/clock", absl::StrCat("{\"today\":\"", today, "\"}")));
  RETURN_IF_ERROR(ControlOk(panel, "/_sim/reset_job", "{}"));
  RETURN_IF_ERROR(ControlOk(panel, "/_sim/reset", absl::StrCat("{\"uuid\":\"", uuid, "\"}")));
  // Read on a connection of its own: this transaction's reads all see the
  // snapshot taken by its first one, before the resets.
  ASSIGN_OR_RETURN(auto fresh,
                   MariaDbConnection::Connect(SharedMariaDb().Options(child(i).database())));
  ASSIGN_OR_RETURN(const auto after, ReadChildCounters(*fresh, state));
  RETURN_IF_ERROR(tx.Commit());

  // Every user a reset zeroed lost what no collect had seen yet.
  for (const auto& [user, was] : before) {
    auto now = after.find(user);
    if (now == after.end()) continue;
    const bool reset = now->second.last_reset != was.last_reset || now->second.current < was.current;
    if (!reset) continue;
    wiped_[user] += was.unreported;
    local_resets_[c].insert(user);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SystemUnderTest::UsersWithUsage(int i) {
  ASSIGN_OR_RETURN(auto conn,
                   MariaDbConnection::Connect(SharedMariaDb().Options(child(i).database())));
  ASSIGN_OR_RETURN(ResultSet rows, conn->Query("SELECT uuid FROM user WHERE current_usage > 0"));
  std::vector<std::string> uuids;
  for (const auto& row : rows.rows) uuids.push_back(row[0].value_or(""));
  return uuids;
}

absl::Status SystemUnderTest::SetTraffic(bool enabled) {
  traffic_on_ = enabled;
  for (auto& child : children_) RETURN_IF_ERROR(child->SetTraffic(enabled));
  return SetParentTraffic(enabled);
}

absl::Status SystemUnderTest::SetParentTraffic(bool enabled) {
  if (options_.parent_traffic.interval_ms <= 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto set, parent_->Control("POST", "/_sim/traffic",
                                              absl::StrCat("{\"enabled\":", enabled ? "true" : "false", "}")));
  if (set.status != 200) return absl::InternalError(absl::StrCat("parent POST /_sim/traffic -> ", set.status));
  if (enabled) return absl::OkStatus();
  // Paused: one usage-task run moves what its cores counted into its table,
  // so a snapshot sees every byte the parent generated in its usage.
  ASSIGN_OR_RETURN(auto flushed, parent_->Control("POST", "/_sim/usage_task", "{}"));
  if (flushed.status != 200) {
    return absl::InternalError(absl::StrCat("parent POST /_sim/usage_task -> ", flushed.status, " ", flushed.body));
  }
  return absl::OkStatus();
}

absl::StatusOr<UsageSnapshot> SystemUnderTest::Snapshot() {
  UsageSnapshot snapshot;
  snapshot.wiped = wiped_;
  ASSIGN_OR_RETURN(snapshot.parent, ReadParentUsage(parent_->options().database));
  for (auto& child : children_) {
    ASSIGN_OR_RETURN(auto generated, child->Generated());
    snapshot.generated.push_back(std::move(generated));
  }
  if (options_.parent_traffic.interval_ms > 0) {
    ASSIGN_OR_RETURN(auto generated, GeneratedBytes(*parent_, "parent"));
    snapshot.generated.push_back(std::move(generated));
  }
  return snapshot;
}

absl::Status SystemUnderTest::StopTrafficAndDrain(absl::Duration timeout) {
  RETURN_IF_ERROR(SetTraffic(false));
  const absl::Time stopped = absl::Now();
  const absl::Time deadline = stopped + timeout;
  std::string waiting_for;
  while (absl::Now() < deadline) {
    waiting_for.clear();
    for (auto& child : children_) {
      auto status = child->reporter().Status();
      if (!status.ok()) {
        absl::StrAppend(&waiting_for, child->node_id(), ": ", status.status().message(), "; ");
        continue;
      }
      if (FromProtoTimestamp(status->last_collect_at()) <= stopped) {
        absl::StrAppend(&waiting_for, child->node_id(), ": no collect since the pause; ");
      } else if (status->outbox_reports() > 0 ||
                 status->last_seq_acked() != status->last_seq_written()) {
        absl::StrAppend(&waiting_for, child->node_id(), ": outbox ", status->outbox_reports(),
                        " reports, acked ", status->last_seq_acked(), " of ",
                        status->last_seq_written(), "; ");
      }
    }
    if (waiting_for.empty()) {
      auto hub = hub_->Status();
      if (!hub.ok()) {
        waiting_for = std::string(hub.status().message());
      } else if (hub->pending_users() > 0 || hub->pending_bytes() > 0) {
        waiting_for = absl::StrCat("hub: ", hub->pending_users(), " users / ",
                                   hub->pending_bytes(), " bytes pending");
      } else {
        return absl::OkStatus();
      }
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat("not drained after ",
                                                  absl::FormatDuration(timeout), ": ", waiting_for));
}

absl::StatusOr<UsageComparison> SystemUnderTest::CompareWithBaseline(const UsageSnapshot& baseline) {
  ASSIGN_OR_RETURN(UsageSnapshot now, Snapshot());
  return CompareUsage(baseline, now);
}

absl::StatusOr<nlohmann::json> SystemUnderTest::ParentUsers() {
  ASSIGN_OR_RETURN(auto response, parent_->Api("GET", "admin/user/"));
  if (response.status == 404) return nlohmann::json::array();
  if (response.status != 200) {
    return absl::InternalError(absl::StrCat("parent GET user/ -> ", response.status));
  }
  try {
    return nlohmann::json::parse(response.body);
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat("parent user list: ", e.what()));
  }
}

absl::StatusOr<absl::Duration> SystemUnderTest::WaitChildrenAgree(
    absl::Duration timeout, absl::Duration poll, const std::string& what,
    const std::function<std::vector<std::string>(const nlohmann::json&, int)>& differences_of) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  std::string differences;
  while (true) {
    differences.clear();
    absl::StatusOr<nlohmann::json> parent = ParentUsers();
    if (!parent.ok()) {
      differences = std::string(parent.status().message());
    } else {
      for (int i = 0; i < child_count(); ++i) {
        for (const std::string& d : differences_of(*parent, i)) {
          absl::StrAppend(&differences, child(i).node_id(), ": ", d, "\n");
        }
      }
    }
    if (differences.empty()) return absl::Now() - start;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(poll);
  }
  return absl::FailedPreconditionError(
      absl::StrCat(what, " after ", absl::FormatDuration(timeout), ":\n", differences));
}

absl::Status SystemUnderTest::WaitRosterConverged(absl::Duration timeout) {
  return WaitChildrenAgree(timeout, absl::Milliseconds(250), "roster differs",
                           [&](const nlohmann::json& parent, int i) -> std::vector<std::string> {
                             auto rows = child(i).Users();
                             if (!rows.ok()) return {std::string(rows.status().message())};
                             return RosterDifferences(parent, *rows,
                                                      local_resets_[static_cast<size_t>(i)]);
                           })
      .status();
}

std::set<std::string> SystemUnderTest::ClockAffectedUsers(int i,
                                                          const nlohmann::json& parent_users) const {
  std::set<std::string> affected;
  const int offset = child_day_offset_[static_cast<size_t>(i)];
  if (offset == 0) return affected;
  const absl::CivilDay today = PanelToday();
  for (const nlohmann::json& user : parent_users) {
    const nlohmann::json start = user.value("start_date", nlohmann::json());
    if (!start.is_string()) continue;
    absl::StatusOr<absl::CivilDay> day = ParsePanelDate(start.get<std::string>());
    if (!day.ok()) continue;
    const absl::CivilDay ends = *day + user.value("package_days", 0);
    if (ends >= today && ends < today + offset) {
      affected.insert(absl::AsciiStrToLower(user.value("uuid", "")));
    }
  }
  return affected;
}

absl::StatusOr<absl::Duration> SystemUnderTest::WaitCoresFollow(absl::Duration timeout) {
  return WaitChildrenAgree(
      timeout, absl::Milliseconds(100), "cores or is_active differ",
      [&](const nlohmann::json& parent, int i) -> std::vector<std::string> {
        auto cores = child(i).panel().Control("GET", "/_sim/cores");
        auto users = child(i).panel().Api("GET", "admin/user/");
        if (!cores.ok() || !users.ok() || cores->status != 200 || users->status != 200) {
          return {"cannot read its cores or users"};
        }
        nlohmann::json cores_json = nlohmann::json::parse(cores->body, nullptr, false);
        nlohmann::json users_json = nlohmann::json::parse(users->body, nullptr, false);
        if (cores_json.is_discarded() || !users_json.is_array()) return {"unreadable cores or users"};
        return CoreDifferences(parent, cores_json, users_json, ClockAffectedUsers(i, parent));
      });
}

std::string SystemUnderTest::Diagnostics() {
  std::string text;
  if (auto hub = hub_->Status(); hub.ok()) {
    absl::StrAppend(&text, "hub: pending ", hub->pending_users(), " users / ", hub->pending_bytes(),
                    " B, patches ", hub->patches_total(), ", failing users ",
                    hub->failing_users_size(), ", last parent error \"", hub->last_parent_error(),
                    "\", orphaned ", hub->orphaned_bytes(), " B\n");
  } else {
    absl::StrAppend(&text, "hub: ", hub.status().message(), "\n");
  }
  absl::StrAppend(&text, "--- hub log (tail) ---\n", hub_->LogTail(2500), "\n");
  for (auto& child : children_) {
    if (auto st = child->reporter().Status(); st.ok()) {
      absl::StrAppend(&text, child->node_id(), ": outbox ", st->outbox_reports(), ", seq ",
                      st->last_seq_acked(), "/", st->last_seq_written(), ", hub connected ",
                      st->hub_connected(), ", roster stream ", st->roster_stream_open(),
                      ", last error \"", st->last_error(), "\"\n");
    } else {
      absl::StrAppend(&text, child->node_id(), ": ", st.status().message(), "\n");
    }
    absl::StrAppend(&text, "--- ", child->node_id(), " reporter log (tail) ---\n",
                    child->reporter().LogTail(1500), "\n");
  }
  return text;
}

}  // namespace hsync::e2e
