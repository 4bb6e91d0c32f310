// The proxy cores follow the roster (issue 11 part 2) against a real panelsim
// child with cores: roster changes applied by the RosterApplier are recorded
// in the same transaction, synced by the CoreSyncer through the child panel's
// own API (ChildPanelClient, zero configuration: admin path and key read from
// the panel's database) and followed by apply runs (panelsim-ctl). Checks the
// cores (GET /_sim/cores), the driver calls per user, outages of the API
// (500s, the process down), exit 12 busy and the run count under a burst.
#include <csignal>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "reporter/panel/apply_trigger.h"
#include "reporter/panel/child_panel_client.h"
#include "reporter/panel/core_sync_queue.h"
#include "reporter/panel/core_syncer.h"
#include "reporter/roster/roster_applier.h"
#include "reporter/state/state_store.h"
#include "tests/reporter/child_db.h"
#include "tests/support/child_process.h"
#include "tests/support/panelsim_runner.h"
#include "tests/support/test_mariadb.h"

namespace hsync::reporter {
namespace {

using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::User;
using hsync::testing::PanelsimOptions;
using hsync::testing::PanelsimRunner;
using hsync::testing::RandomUuid;
using hsync::testing::SharedMariaDb;
using hsync::testing::WaitFor;

User MakeUser(const std::string& uuid, bool active = true) {
  User u;
  u.set_uuid(uuid);
  u.set_name(absl::StrCat("u-", uuid.substr(0, 8)));
  u.set_usage_limit_bytes(uint64_t{10} << 30);
  u.set_package_days(30);
  u.set_mode("no_reset");
  u.set_last_online("0001-01-01 00:00:00");
  u.set_enable(active);
  u.set_is_active(active);
  u.set_lang("en");
  return u;
}

class CoreSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PanelsimOptions options;
    options.database = hsync::testing::UniqueDatabaseName("coresync");
    options.extra_args = {"--apply-duration-ms", std::to_string(apply_duration_ms_)};
    auto runner = PanelsimRunner::Start(options);
    ASSERT_TRUE(runner.ok()) << runner.status();
    panel_ = *std::move(runner);
    db_ = SharedMariaDb().Options();
    auto conn = MariaDbConnection::Connect(db_);
    ASSERT_TRUE(conn.ok()) << conn.status();
    conn_ = *std::move(conn);
    store_ = std::make_unique<StateStore>(panel_->options().database + "_state", false);
    ASSERT_TRUE(conn_->Execute(absl::StrCat("DROP DATABASE IF EXISTS `", store_->database(), "`")).ok());
    auto state = store_->EnsureSchema(*conn_);
    ASSERT_TRUE(state.ok()) << state.status();
    queue_ = std::make_unique<CoreSyncQueue>(store_.get(), panel_->options().database);
    RosterApplyOptions roster;
    roster.panel_database = panel_->options().database;
    roster.core_changes = queue_.get();
    roster.guard_min = 1000;
    applier_ = std::make_unique<RosterApplier>(store_.get(), roster);
  }

  void StartReporterParts(absl::Duration debounce = absl::Milliseconds(300)) {
    ApplyTriggerOptions apply;
    apply.command = panel_->apply_command();
    apply.debounce = debounce;
    apply.max_delay = absl::Seconds(5);
    apply.busy_retry = absl::Milliseconds(200);
    apply.timeout = absl::Seconds(20);
    trigger_ = std::make_unique<ApplyTrigger>(apply, db_, queue_.get(), &board_);
    PanelCredentialOverrides overrides;
    overrides.address = absl::StrCat("127.0.0.1:", panel_->port());
    const std::string panel_db = panel_->options().database;
    auto source = [this, overrides, panel_db]() -> absl::StatusOr<PanelCredentials> {
      auto conn = MariaDbConnection::Connect(db_);
      if (!conn.ok()) return conn.status();
      return ResolvePanelCredentials(**conn, panel_db, overrides);
    };
    CoreSyncerOptions syncer;
    syncer.retry_initial = absl::Milliseconds(100);
    syncer.retry_max = absl::Milliseconds(500);
    syncer.poll = absl::Milliseconds(500);
    syncer_ = std::make_unique<CoreSyncer>(
        db_, queue_.get(), std::make_unique<ChildPanelClient>(source, absl::Seconds(5)),
        trigger_.get(), &board_, syncer);
    trigger_->Start();
    syncer_->Start();
  }

  void Apply(const RosterUpdate& update) {
    auto result = applier_->Apply(*conn_, update);
    ASSERT_TRUE(result.ok()) << result.status();
    if (syncer_ != nullptr) syncer_->Wake();
  }
  void Upsert(std::vector<User> users, uint64_t version) {
    RosterUpdate u;
    u.set_version(version);
    for (auto& user : users) *u.add_upserts() = std::move(user);
    Apply(u);
  }

  nlohmann::json Json(const std::string& path) {
    auto r = panel_->Control("GET", path);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return nlohmann::json::object();
    return nlohmann::json::parse(r->body, nullptr, false);
  }
  bool InCore(const std::string& core, const std::string& uuid) {
    nlohmann::json cores = Json("/_sim/cores");
    if (!cores.contains(core)) return false;
    for (const auto& u : cores[core]) {
      if (u == uuid) return true;
    }
    return false;
  }
  // {add, remove} xray driver calls of one user so far.
  std::pair<int, int> DriverCalls(const std::string& uuid) {
    nlohmann::json c = Json("/_sim/counters");
    if (!c.contains("driver_calls") || !c["driver_calls"].contains(uuid)) return {0, 0};
    return {c["driver_calls"][uuid].value("add", 0), c["driver_calls"][uuid].value("remove", 0)};
  }
  int Counter(const std::string& name) { return Json("/_sim/counters").value(name, 0); }
  uint64_t Pending() { return queue_->Stats(*conn_)->pending; }

  int apply_duration_ms_ = 300;
  std::unique_ptr<PanelsimRunner> panel_;
  MariaDbOptions db_;
  std::unique_ptr<MariaDbConnection> conn_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<CoreSyncQueue> queue_;
  std::unique_ptr<RosterApplier> applier_;
  StatusBoard board_;
  std::unique_ptr<ApplyTrigger> trigger_;
  std::unique_ptr<CoreSyncer> syncer_;
};

TEST_F(CoreSyncTest, CreateBlockUnblockRemoveMoveTheUserInAndOutOfXrayWithinSeconds) {
  StartReporterParts();
  const std::string a = RandomUuid(), bystander = RandomUuid();
  Upsert({MakeUser(a), MakeUser(bystander)}, 1);
  ASSERT_TRUE(WaitFor([&] { return InCore("xray", a) && InCore("xray", bystander); }, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return InCore("singbox", a); }, absl::Seconds(10)))
      << "the apply run after the syncs renders sing-box";
  EXPECT_TRUE(InCore("wireguard", a));
  const auto bystander_calls = DriverCalls(bystander);

  const absl::Time block_sent = absl::Now();
  Upsert({MakeUser(a, false)}, 2);
  ASSERT_TRUE(WaitFor([&] { return !InCore("xray", a); }, absl::Seconds(5)));
  std::cout << "block: gone from xray after " << absl::FormatDuration(absl::Now() - block_sent) << "\n";
  ASSERT_TRUE(WaitFor([&] { return !InCore("singbox", a); }, absl::Seconds(10)));

  Upsert({MakeUser(a, true)}, 3);
  ASSERT_TRUE(WaitFor([&] { return InCore("xray", a); }, absl::Seconds(5)));

  RosterUpdate remove;
  remove.set_version(4);
  remove.add_removed_uuids(a);
  Apply(remove);
  ASSERT_TRUE(WaitFor([&] { return !InCore("xray", a); }, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return Pending() == 0; }, absl::Seconds(5)));
  // Driver calls only for the changed user: the bystander was never touched again.
  EXPECT_EQ(DriverCalls(bystander), bystander_calls);
  EXPECT_TRUE(InCore("xray", bystander));
  EXPECT_EQ(board_.Snapshot().core_syncs_failed(), 0u);
  // An unchanged upsert records nothing.
  Upsert({MakeUser(bystander)}, 5);
  EXPECT_EQ(Pending(), 0u);
}

TEST_F(CoreSyncTest, CreatedUsersGetAUsernameAsThePanelsInsertHookGives) {
  const std::string a = RandomUuid();
  Upsert({MakeUser(a)}, 1);
  auto rs = conn_->Query(absl::StrCat("SELECT username FROM `", panel_->options().database,
                                      "`.`user` WHERE uuid = '", a, "'"));
  ASSERT_TRUE(rs.ok() && rs->rows.size() == 1);
  const std::string username = rs->rows[0][0].value_or("");
  EXPECT_EQ(username.size(), 12u);
  EXPECT_EQ(username.substr(0, 4), "user");
}

TEST_F(CoreSyncTest, PanelAnswering500ThenDownIsRetriedAndNothingIsLost) {
  StartReporterParts();
  ASSERT_TRUE(panel_->Control("POST", "/_sim/faults",
                              R"({"route":"patch_user","error_rate":1.0,"error_status":500})").ok());
  std::vector<User> users;
  std::vector<std::string> uuids;
  for (int i = 0; i < 5; ++i) {
    uuids.push_back(RandomUuid());
    users.push_back(MakeUser(uuids.back()));
  }
  Upsert(users, 1);
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().core_syncs_failed() >= 10; }, absl::Seconds(10)));
  EXPECT_EQ(Pending(), 5u);
  EXPECT_FALSE(InCore("xray", uuids[0]));
  EXPECT_THAT(board_.Snapshot().core_sync_last_error(), ::testing::HasSubstr("HTTP 500"));
  EXPECT_THAT(board_.Snapshot().core_sync_last_error(),
              ::testing::Not(::testing::HasSubstr(panel_->api_key())));  // no secret in status
  // Now the process dies altogether: connection refused, still retried.
  ASSERT_TRUE(panel_->process().Signal(SIGKILL).ok());
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_EQ(Pending(), 5u);
  ASSERT_TRUE(panel_->Restart().ok());  // fault rules are gone with the old process
  ASSERT_TRUE(WaitFor([&] { return Pending() == 0; }, absl::Seconds(10)));
  for (const auto& uuid : uuids) EXPECT_TRUE(InCore("xray", uuid)) << uuid;
}

// Apply runs of 2 s, so that another run can hold the lock while ours starts.
class CoreSyncBusyTest : public CoreSyncTest {
 protected:
  CoreSyncBusyTest() { apply_duration_ms_ = 2000; }
};

TEST_F(CoreSyncBusyTest, ABurstIsOneApplyRunAndABusyRunIsRetried) {
  StartReporterParts(/*debounce=*/absl::Milliseconds(300));
  // Somebody else's run holds the lock: the reporter's first attempt exits 12.
  std::thread other([&] {
    panel_->Control("POST", "/_sim/apply_users", R"({"args":["apply_users","--no-gui"]})").IgnoreError();
  });
  absl::SleepFor(absl::Milliseconds(200));  // the other run has started and holds the lock
  std::vector<std::string> uuids;
  for (int i = 0; i < 20; ++i) {
    uuids.push_back(RandomUuid());
    Upsert({MakeUser(uuids.back())}, i + 1);  // 20 roster transactions
  }
  ASSERT_TRUE(WaitFor([&] { return Pending() == 0; }, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_busy_retries() >= 1; }, absl::Seconds(5)));
  other.join();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_runs() >= 1 &&
                                   board_.Snapshot().apply_generation_done() ==
                                       board_.Snapshot().apply_generation_wanted(); },
                      absl::Seconds(15)));
  absl::SleepFor(absl::Seconds(1));
  for (const auto& uuid : uuids) EXPECT_TRUE(InCore("singbox", uuid)) << uuid;
  const auto status = board_.Snapshot();
  std::cout << "20 changes: " << status.apply_runs() << " apply runs, " << status.apply_busy_retries()
            << " busy retries\n";
  EXPECT_EQ(status.apply_runs(), 1u);  // the whole burst: one run of ours
  EXPECT_EQ(status.apply_failures(), 0u);
  EXPECT_GE(Counter("apply_busy"), 1);
  EXPECT_EQ(Counter("full_installs"), 0);
}

TEST_F(CoreSyncTest, ARowLeftByACrashIsSyncedAfterTheRestart) {
  // The roster transaction commits, then the process dies before any sync.
  const std::string a = RandomUuid();
  Upsert({MakeUser(a)}, 1);
  ASSERT_EQ(Pending(), 1u);
  EXPECT_FALSE(InCore("xray", a));
  StartReporterParts();  // "after the restart"
  ASSERT_TRUE(WaitFor([&] { return InCore("xray", a); }, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return InCore("singbox", a); }, absl::Seconds(10)));
}

TEST_F(CoreSyncTest, DeletePolicyDeletesThroughTheApi) {
  RosterApplyOptions roster;
  roster.panel_database = panel_->options().database;
  roster.core_changes = queue_.get();
  roster.remove_policy = RemovePolicy::kDelete;
  roster.guard_min = 1000;
  applier_ = std::make_unique<RosterApplier>(store_.get(), roster);
  StartReporterParts();
  const std::string a = RandomUuid(), b = RandomUuid();
  Upsert({MakeUser(a), MakeUser(b)}, 1);
  ASSERT_TRUE(WaitFor([&] { return InCore("xray", a); }, absl::Seconds(5)));
  RosterUpdate remove;
  remove.set_version(2);
  remove.add_removed_uuids(a);
  Apply(remove);
  ASSERT_TRUE(WaitFor([&] { return !InCore("xray", a); }, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return Pending() == 0; }, absl::Seconds(5)));
  auto rs = conn_->Query(absl::StrCat("SELECT COUNT(*) FROM `", panel_->options().database,
                                      "`.`user` WHERE uuid = '", a, "'"));
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(rs->rows[0][0].value_or(""), "0");
  EXPECT_TRUE(InCore("xray", b));
}

}  // namespace
}  // namespace hsync::reporter
