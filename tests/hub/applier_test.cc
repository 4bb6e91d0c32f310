// Applier against panelsim (real HTTP, real MariaDB) with a real journal:
// exact sums across nodes, urgency, one PATCH per user per cycle, orphans,
// parent outages, a permanently failing user, and intent recovery — also
// across a SIGKILL of the process that was applying.
#include "hub/apply/applier.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <mutex>

#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "common/units.h"
#include "hub/apply/api_parent_writer.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/hub/parent_client_test_panel.h"
#include "tests/hub/parent_client_test_proxy.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using testing::Delta;
using testing::MakeReport;
using testing::TestPanel;
using testing::TestUuid;

// Far enough ahead that every pending user is due and every backoff is over.
absl::Time Later() { return absl::Now() + absl::Hours(1); }

class ApplierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { panel_ = TestPanel::Start().release(); }
  static void TearDownTestSuite() {
    delete panel_;
    panel_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(panel_, nullptr);
    panel_->ClearFaults();
    dir_ = hsync::testing::MakeTempDir("applier");
    auto journal = Journal::Open(dir_ + "/journal.sqlite");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    options_.cycle_interval = absl::Milliseconds(50);
    options_.max_apply_delay = absl::Seconds(60);
    options_.urgent_margin_bytes = 1000;
    options_.backoff_initial = absl::Seconds(1);
    options_.backoff_max = absl::Seconds(8);
    options_.intent_settle_time = absl::Seconds(2);
    options_.max_patches_per_minute = 0;  // the budget has its own tests below
  }
  void TearDown() override {
    applier_.reset();
    if (panel_ != nullptr) panel_->ClearFaults();
  }

  static std::string NewUuid() {
    static uint64_t n = 0;
    return TestUuid(++n, 0xa9);
  }

  // `parent`: the client to use (default: one straight to the suite's panel).
  Applier& MakeApplier(std::unique_ptr<ParentClient> parent = nullptr) {
    ApplierHooks hooks;
    hooks.lookup_user = [this](const std::string& uuid) -> std::optional<hiddify_sync::v1::User> {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = roster_.find(uuid);
      if (it == roster_.end()) return std::nullopt;
      return it->second;
    };
    hooks.on_user_patched = [this](const hiddify_sync::v1::User& user) {
      std::lock_guard<std::mutex> lock(mu_);
      patched_.push_back(user);
    };
    if (parent == nullptr) parent = panel_->Client();
    applier_ = std::make_unique<Applier>(journal_.get(), ApiWriter(journal_.get(), std::move(parent)),
                                         hooks, options_);
    return *applier_;
  }

  std::unique_ptr<ParentWriter> ApiWriter(Journal* journal, std::unique_ptr<ParentClient> parent) {
    return std::make_unique<ApiParentWriter>(journal, std::move(parent),
                                             options_.intent_settle_time);
  }

  void Accept(const std::string& node, uint64_t seq, const std::vector<Delta>& deltas,
              uint64_t stream = 1) {
    auto r = journal_->Accept(MakeReport(node, stream, seq, deltas));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_FALSE(r->duplicate);
  }

  uint64_t Pending(const std::string& uuid) {
    auto pending = journal_->PendingUsers();
    EXPECT_TRUE(pending.ok());
    for (const PendingUser& p : *pending) {
      if (p.uuid == uuid) return p.bytes;
    }
    return 0;
  }

  void SetRosterView(const std::string& uuid, uint64_t limit, uint64_t usage) {
    hiddify_sync::v1::User u;
    u.set_uuid(uuid);
    u.set_usage_limit_bytes(limit);
    u.set_current_usage_bytes(usage);
    std::lock_guard<std::mutex> lock(mu_);
    roster_[uuid] = u;
  }

  static TestPanel* panel_;
  std::string dir_;
  std::unique_ptr<Journal> journal_;
  ApplierOptions options_;
  std::unique_ptr<Applier> applier_;
  std::mutex mu_;
  std::map<std::string, hiddify_sync::v1::User> roster_;
  std::vector<hiddify_sync::v1::User> patched_;
};
TestPanel* ApplierTest::panel_ = nullptr;

TEST_F(ApplierTest, SumsEveryNodesBytesExactlyWithOnePatchPerUserPerCycle) {
  const std::vector<std::string> users = {NewUuid(), NewUuid(), NewUuid()};
  std::map<std::string, uint64_t> expected;
  for (size_t i = 0; i < users.size(); ++i) {
    const uint64_t initial = 1000 * (i + 1) + 7;
    panel_->CreateUser(users[i], 1000 * kBytesPerGiB, initial, "2024-01-01");
    expected[users[i]] = initial;
  }
  absl::BitGen gen;
  for (int node = 0; node < 10; ++node) {
    for (uint64_t seq = 1; seq <= 5; ++seq) {
      std::vector<Delta> deltas;
      for (const std::string& u : users) {
        const uint64_t bytes = absl::Uniform<uint64_t>(gen, 1, 3'000'000'000);
        deltas.push_back({u, bytes});
        expected[u] += bytes;
      }
      Accept(absl::StrCat("node-", node), seq, deltas);
    }
  }
  panel_->ResetCounters();
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  for (const std::string& u : users) {
    EXPECT_EQ(panel_->Usage(u), expected[u]) << u;
    EXPECT_EQ(Pending(u), 0u);
  }
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 3);
  EXPECT_EQ(panel_->Calls("GET get_user"), 3);
  EXPECT_EQ(panel_->Counters()["usage_patches"].get<int64_t>(), 3);
  const ApplierStats stats = applier.Stats();
  EXPECT_EQ(stats.patches_total, 3u);
  EXPECT_TRUE(stats.parent_reachable);
  EXPECT_NE(stats.last_apply_at, absl::InfinitePast());
  EXPECT_TRUE(stats.failing_users.empty());
  EXPECT_EQ(patched_.size(), 3u);
  // Nothing left: the next cycle calls nothing.
  panel_->ResetCounters();
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 0);
}

TEST_F(ApplierTest, UrgentUsersGoAtOnceOthersWaitForTheDelay) {
  const std::string urgent = NewUuid(), calm = NewUuid(), unknown = NewUuid();
  for (const auto& u : {urgent, calm, unknown}) panel_->CreateUser(u, 1'000'000, 0, "2024-01-01");
  SetRosterView(urgent, 1'000'000, 900'000);
  SetRosterView(calm, 1'000'000, 0);
  // unknown: not in the roster view -> delay only, even with many bytes.
  // urgent: the roster's 900,000 + 99,500 pending >= 1,000,000 - 1,000 margin.
  Accept("n", 1, {{urgent, 99'500}, {calm, 50'000}, {unknown, 5'000'000}});
  Applier& applier = MakeApplier();
  const absl::Time now = absl::Now();
  ASSERT_TRUE(applier.RunOneCycle(now).ok());
  EXPECT_EQ(panel_->Usage(urgent), 99'500u);
  EXPECT_EQ(panel_->Usage(calm), 0u);
  EXPECT_EQ(panel_->Usage(unknown), 0u);
  EXPECT_EQ(Pending(calm), 50'000u);
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Seconds(61)).ok());
  EXPECT_EQ(panel_->Usage(calm), 50'000u);
  EXPECT_EQ(panel_->Usage(unknown), 5'000'000u);
}

TEST_F(ApplierTest, UnderATightBudgetTheUserAboutToCrossItsQuotaGoesFirst) {
  // Eight users due (old bytes); the one whose pending bytes take it over its
  // quota is the fifth in the journal's order. A budget of 6 per minute = 1
  // per 10 s: the first cycle writes only that user.
  std::vector<std::string> users;
  for (int i = 0; i < 8; ++i) {
    users.push_back(NewUuid());
    panel_->CreateUser(users.back(), 1'000'000'000, 0, "2024-01-01");
    SetRosterView(users.back(), 1'000'000'000, 0);
  }
  const std::string crossing = users[4];
  SetRosterView(crossing, 1'000'000'000, 999'000'000);
  std::vector<Delta> deltas;
  for (const std::string& u : users) deltas.push_back({u, 2'000'000});
  Accept("n", 1, deltas);
  options_.max_patches_per_minute = 6;
  Applier& applier = MakeApplier();
  panel_->ResetCounters();
  const absl::Time now = absl::Now() + absl::Minutes(2);  // everyone's bytes are due
  ASSERT_TRUE(applier.RunOneCycle(now).ok());
  ApplierStats stats = applier.Stats();
  EXPECT_EQ(stats.schedule.urgent_due, 1u);
  EXPECT_EQ(stats.schedule.deferred_by_budget, 7u);
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Seconds(1)).ok());  // same 10 s: nothing
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 1);
  EXPECT_EQ(panel_->Usage(crossing), 2'000'000u);
  for (const std::string& u : users) {
    if (u != crossing) {
      EXPECT_EQ(panel_->Usage(u), 0u);
    }
  }
  stats = applier.Stats();
  EXPECT_EQ(stats.schedule.writes_per_minute_budget, 6u);
  EXPECT_EQ(stats.schedule.writes_last_minute, 1u);
  EXPECT_EQ(stats.schedule.deferred_by_budget, 7u);
}

TEST_F(ApplierTest, TheRunningApplierNeverExceedsItsBudget) {
  // 40 users due at once; a budget of 12 per minute = 2 per 10 s. The
  // applier's own thread runs for 3 s of wall clock: exactly 2 PATCHes reach
  // the panel, the rest wait (counted as deferred).
  std::vector<Delta> deltas;
  for (int i = 0; i < 40; ++i) {
    const std::string u = NewUuid();
    panel_->CreateUser(u, 1'000'000'000, 0, "2024-01-01");
    deltas.push_back({u, 1000});
  }
  Accept("n", 1, deltas);
  options_.max_patches_per_minute = 12;
  options_.max_apply_delay = absl::ZeroDuration();
  panel_->ResetCounters();
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  absl::SleepFor(absl::Seconds(3));
  applier.Stop();
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 2);
  const ApplierStats stats = applier.Stats();
  EXPECT_EQ(stats.patches_total, 2u);
  EXPECT_EQ(stats.schedule.writes_last_minute, 2u);
  EXPECT_EQ(stats.schedule.deferred_by_budget, 38u);
  EXPECT_GE(stats.schedule.deferred_by_budget_total, 38u);
}

TEST_F(ApplierTest, AppliedBytesStartThePackageAndMoveLastOnlineForward) {
  const std::string fresh = NewUuid(), started = NewUuid();
  panel_->CreateUser(fresh, kBytesPerGiB, 0, std::nullopt, 45);
  panel_->CreateUser(started, kBytesPerGiB, 0, "2024-02-03", 45);
  const absl::Time seen = absl::FromCivil(absl::CivilSecond(2024, 5, 6, 7, 8, 9), PanelTimeZone());
  Accept("n", 1, {{fresh, 10, seen}, {started, 20}});
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  testing::DbUserRow row = panel_->Row(fresh);
  EXPECT_EQ(row.current_usage, 10u);
  EXPECT_EQ(row.start_date, FormatPanelDate(PanelToday()));
  EXPECT_EQ(row.package_days, 45);
  EXPECT_EQ(row.last_online, "2024-05-06 07:08:09");
  row = panel_->Row(started);
  EXPECT_EQ(row.start_date, "2024-02-03");
  EXPECT_EQ(row.last_online, std::string(kNeverOnline));  // no child saw it: unchanged

  // An older last_online from a child does not move the parent's back.
  Accept("n", 2, {{fresh, 5, seen - absl::Hours(24)}});
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  row = panel_->Row(fresh);
  EXPECT_EQ(row.current_usage, 15u);
  EXPECT_EQ(row.last_online, "2024-05-06 07:08:09");
}

TEST_F(ApplierTest, UsersUnknownToTheParentAreOrphanedOnce) {
  const std::string ghost = NewUuid(), real = NewUuid();
  panel_->CreateUser(real, kBytesPerGiB, 0, "2024-01-01");
  Accept("n", 1, {{ghost, 1234}, {real, 10}});
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(Pending(ghost), 0u);
  EXPECT_EQ(panel_->Usage(real), 10u);
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->orphaned_bytes, 1234u);
  EXPECT_EQ(stats->orphaned_users, 1u);
  EXPECT_TRUE(applier.Stats().failing_users.empty());
  panel_->ResetCounters();
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(panel_->Calls("GET get_user"), 0);  // not retried
}

TEST_F(ApplierTest, AProxyAnswering404ForEverythingOrphansNothingThenAppliesExactly) {
  const std::string a = NewUuid(), b = NewUuid(), landed = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 100, "2024-01-01");
  panel_->CreateUser(b, kBytesPerGiB, 200, "2024-01-01");
  panel_->CreateUser(landed, kBytesPerGiB, 500, "2024-01-01");
  Accept("n", 1, {{a, 11}, {b, 22}, {landed, 70}});
  // An intent whose PATCH reached the panel before its answer was lost.
  ASSERT_TRUE(journal_->RecordIntent({landed, 500, 570, 70, absl::Now() - absl::Minutes(5)}).ok());
  UserPatch patch;
  patch.current_usage_bytes = 570;
  ASSERT_TRUE(panel_->Client()->PatchUser(landed, patch).ok());

  auto proxy = testing::FrontProxy::Start(panel_->runner().port());
  ASSERT_NE(proxy, nullptr);
  ParentClientOptions o = panel_->ClientOptions();
  o.base_url = absl::StrCat(proxy->root_url(), "/", panel_->runner().options().proxy_path);
  auto client = ParentClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  Applier& applier = MakeApplier(std::move(*client));

  // nginx in front of the panel answers 404 for everything, for a while.
  proxy->AnswerNotFound(testing::kNginx404Html);
  absl::Time now = Later();
  for (int cycle = 0; cycle < 3; ++cycle) {
    ASSERT_TRUE(applier.RunOneCycle(now).ok());
    now += absl::Minutes(10);  // past every backoff: each cycle tries everyone again
  }
  EXPECT_GE(proxy->not_found_answers(), 9);
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->orphaned_bytes, 0u);
  EXPECT_EQ(stats->orphaned_users, 0u);
  EXPECT_EQ(Pending(a), 11u);
  EXPECT_EQ(Pending(b), 22u);
  EXPECT_EQ(Pending(landed), 70u);
  EXPECT_EQ(journal_->OpenIntents()->size(), 1u);  // not abandoned on a foreign 404
  ApplierStats applier_stats = applier.Stats();
  EXPECT_EQ(applier_stats.failing_users.size(), 3u);
  EXPECT_NE(applier_stats.last_parent_error.find("404 that is not the panel's: <html>"),
            std::string::npos)
      << applier_stats.last_parent_error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_TRUE(patched_.empty());  // nothing to publish
  }
  EXPECT_EQ(panel_->Usage(a), 100u);
  EXPECT_EQ(panel_->Usage(landed), 570u);

  // The proxy recovers: every byte reaches the parent exactly once.
  proxy->Forward();
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Hours(1)).ok());
  EXPECT_EQ(panel_->Usage(a), 111u);
  EXPECT_EQ(panel_->Usage(b), 222u);
  EXPECT_EQ(panel_->Usage(landed), 570u);  // its intent was completed, not re-applied
  EXPECT_EQ(Pending(a) + Pending(b) + Pending(landed), 0u);
  EXPECT_TRUE(journal_->OpenIntents()->empty());
  EXPECT_TRUE(applier.Stats().failing_users.empty());  // `landed` too: its intent is resolved
  stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->orphaned_bytes, 0u);
}

TEST_F(ApplierTest, ParentDownKeepsBytesAndBacksOffThenAppliesExactly) {
  const std::string a = NewUuid(), b = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 100, "2024-01-01");
  panel_->CreateUser(b, kBytesPerGiB, 200, "2024-01-01");
  Accept("n", 1, {{a, 11}, {b, 22}});
  panel_->AddFault({{"route", "*"}, {"drop_rate", 1.0}});
  Applier& applier = MakeApplier();
  const absl::Time now = Later();
  ASSERT_TRUE(applier.RunOneCycle(now).ok());
  ApplierStats stats = applier.Stats();
  EXPECT_FALSE(stats.parent_reachable);
  EXPECT_FALSE(stats.last_parent_error.empty());
  EXPECT_NE(stats.last_parent_error_at, absl::InfinitePast());
  EXPECT_EQ(stats.gets_total, 1u);  // the cycle stopped at the first transport error
  EXPECT_EQ(Pending(a), 11u);
  EXPECT_EQ(Pending(b), 22u);

  // Parent-wide backoff: a cycle right after touches nothing.
  panel_->ResetCounters();
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Milliseconds(100)).ok());
  EXPECT_EQ(panel_->Calls("GET get_user"), 0);

  // More reports arrive during the outage; then the parent comes back.
  Accept("n", 2, {{a, 1}});
  panel_->ClearFaults();
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Minutes(30)).ok());
  EXPECT_EQ(panel_->Usage(a), 112u);
  EXPECT_EQ(panel_->Usage(b), 222u);
  stats = applier.Stats();
  EXPECT_TRUE(stats.parent_reachable);
  EXPECT_TRUE(stats.failing_users.empty());
}

TEST_F(ApplierTest, RealParentOutageAndRestartLosesNothing) {
  auto panel = TestPanel::Start();
  ASSERT_NE(panel, nullptr);
  const std::string a = NewUuid();
  panel->CreateUser(a, kBytesPerGiB, 5, "2024-01-01");
  Accept("n", 1, {{a, 1000}});
  ApplierOptions options = options_;
  Applier applier(journal_.get(), ApiWriter(journal_.get(), panel->Client()), {}, options);
  ASSERT_TRUE(panel->runner().process().Signal(SIGKILL).ok());
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_FALSE(applier.Stats().parent_reachable);
  EXPECT_EQ(Pending(a), 1000u);
  ASSERT_TRUE(panel->runner().Restart().ok());
  ASSERT_TRUE(applier.RunOneCycle(Later() + absl::Hours(1)).ok());
  EXPECT_EQ(panel->Usage(a), 1005u);
  EXPECT_EQ(Pending(a), 0u);
}

TEST_F(ApplierTest, ServerErrorsAndGarbageBackOffOnlyThatUser) {
  const std::string a = NewUuid(), b = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 0, "2024-01-01");
  panel_->CreateUser(b, kBytesPerGiB, 0, "2024-01-01");
  Accept("n", 1, {{a, 1}});
  absl::SleepFor(absl::Milliseconds(5));
  Accept("n", 2, {{b, 2}});
  // The first PATCH of the cycle (user a, the oldest) gets a garbage answer.
  panel_->AddFault({{"route", "patch_user"}, {"garbage_rate", 1.0}, {"remaining", 1}});
  Applier& applier = MakeApplier();
  const absl::Time now = Later();
  ASSERT_TRUE(applier.RunOneCycle(now).ok());
  EXPECT_EQ(panel_->Usage(b), 2u);
  EXPECT_EQ(Pending(a), 1u);
  ApplierStats stats = applier.Stats();
  ASSERT_EQ(stats.failing_users.size(), 1u);
  EXPECT_EQ(stats.failing_users[0].uuid, a);
  EXPECT_EQ(stats.failing_users[0].consecutive_failures, 1u);
  EXPECT_TRUE(stats.parent_reachable);
  // Its intent stays open; after the backoff (and the settle time) it is
  // resolved as "not applied" (panelsim's garbage fault does not process the
  // request) and the bytes go in exactly once.
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Seconds(5)).ok());
  EXPECT_EQ(panel_->Usage(a), 1u);
  EXPECT_EQ(Pending(a), 0u);
  EXPECT_TRUE(applier.Stats().failing_users.empty());
}

TEST_F(ApplierTest, APermanentlyFailingUserDoesNotBlockTheOthers) {
  const std::string bad = NewUuid(), ok1 = NewUuid(), ok2 = NewUuid();
  for (const auto& u : {bad, ok1, ok2}) panel_->CreateUser(u, kBytesPerGiB, 0, "2024-01-01");
  // The panel answers 500 when its database refuses the write — here always,
  // for this one user (a trigger stands in for e.g. a corrupt row).
  auto db = MariaDbConnection::Connect(
      hsync::testing::SharedMariaDb().Options(panel_->runner().options().database));
  ASSERT_TRUE(db.ok()) << db.status();
  const std::string trigger = "poison_" + bad.substr(bad.size() - 6);
  ASSERT_TRUE((*db)->Execute(absl::StrCat(
                  "CREATE TRIGGER ", trigger, " BEFORE UPDATE ON user FOR EACH ROW ",
                  "IF NEW.uuid = '", bad, "' THEN SIGNAL SQLSTATE '45000' ",
                  "SET MESSAGE_TEXT = 'poisoned row'; END IF"))
                  .ok());
  Accept("n", 1, {{bad, 7}});
  absl::SleepFor(absl::Milliseconds(5));
  Accept("n", 2, {{ok1, 1}, {ok2, 2}});
  Applier& applier = MakeApplier();
  absl::Time now = Later();
  ASSERT_TRUE(applier.RunOneCycle(now).ok());
  EXPECT_EQ(panel_->Usage(ok1), 1u);
  EXPECT_EQ(panel_->Usage(ok2), 2u);
  ApplierStats stats = applier.Stats();
  ASSERT_EQ(stats.failing_users.size(), 1u);
  EXPECT_EQ(stats.failing_users[0].uuid, bad);
  EXPECT_EQ(stats.failing_users[0].pending_bytes, 7u);
  EXPECT_NE(stats.failing_users[0].last_error.find("500"), std::string::npos)
      << stats.failing_users[0].last_error;

  // New traffic for the others keeps flowing while `bad` is in backoff.
  for (int round = 0; round < 3; ++round) {
    Accept("n", 3 + round, {{ok1, 10}, {bad, 1}});
    panel_->ResetCounters();
    now += absl::Milliseconds(100);
    ASSERT_TRUE(applier.RunOneCycle(now).ok());
    EXPECT_EQ(panel_->Calls("PATCH patch_user"), 1);  // ok1 only
  }
  EXPECT_EQ(panel_->Usage(ok1), 31u);
  // It is retried after its backoff, and fails again (2nd failure).
  now += absl::Seconds(30);
  ASSERT_TRUE(applier.RunOneCycle(now).ok());
  stats = applier.Stats();
  ASSERT_EQ(stats.failing_users.size(), 1u);
  EXPECT_EQ(stats.failing_users[0].consecutive_failures, 2u);
  EXPECT_GT(stats.failing_users[0].next_attempt_at, now);

  // Fixed: the bytes go in exactly once.
  ASSERT_TRUE((*db)->Execute("DROP TRIGGER " + trigger).ok());
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Hours(1)).ok());
  EXPECT_EQ(panel_->Usage(bad), 10u);
  EXPECT_EQ(Pending(bad), 0u);
  EXPECT_TRUE(applier.Stats().failing_users.empty());
}

// Intent recovery without a crash: the intent is recorded, then the PATCH
// either happened (done here through another client) or not.
TEST_F(ApplierTest, OpenIntentWhosePatchHappenedIsCompletedNotReapplied) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 500, "2024-01-01");
  Accept("n", 1, {{a, 70}});
  ASSERT_TRUE(journal_->RecordIntent({a, 500, 570, 70, absl::Now() - absl::Minutes(5)}).ok());
  UserPatch patch;
  patch.current_usage_bytes = 570;
  ASSERT_TRUE(panel_->Client()->PatchUser(a, patch).ok());
  Accept("n", 2, {{a, 3}});  // arrived after the intent: stays pending
  panel_->ResetCounters();
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  applier.Stop();
  EXPECT_EQ(Pending(a), 3u);
  EXPECT_TRUE(journal_->OpenIntents()->empty());
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 0);
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(panel_->Usage(a), 573u);
}

TEST_F(ApplierTest, OpenIntentWhosePatchNeverHappenedIsAbandonedAndReapplied) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 500, "2024-01-01");
  Accept("n", 1, {{a, 70}});
  ASSERT_TRUE(journal_->RecordIntent({a, 500, 570, 70, absl::Now() - absl::Minutes(5)}).ok());
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  applier.Stop();
  EXPECT_EQ(Pending(a), 70u);
  EXPECT_TRUE(journal_->OpenIntents()->empty());
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(panel_->Usage(a), 570u);
  EXPECT_EQ(Pending(a), 0u);
}

TEST_F(ApplierTest, YoungNotAppliedIntentWaitsForItsPossiblyQueuedPatch) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 500, "2024-01-01");
  Accept("n", 1, {{a, 70}});
  const absl::Time created = absl::Now();
  ASSERT_TRUE(journal_->RecordIntent({a, 500, 570, 70, created}).ok());
  Applier& applier = MakeApplier();
  panel_->ResetCounters();
  ASSERT_TRUE(applier.RunOneCycle(created + absl::Seconds(1)).ok());
  EXPECT_EQ(journal_->OpenIntents()->size(), 1u);  // too young to call it "not applied"
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 0);
  // The PATCH lands late (it was queued in the panel).
  UserPatch patch;
  patch.current_usage_bytes = 570;
  ASSERT_TRUE(panel_->Client()->PatchUser(a, patch).ok());
  ASSERT_TRUE(applier.RunOneCycle(created + absl::Seconds(3)).ok());
  EXPECT_EQ(panel_->Usage(a), 570u);
  EXPECT_EQ(Pending(a), 0u);
}

TEST_F(ApplierTest, IntentOfAUserMovedByAnAdminIsJudgedByDirection) {
  const std::string up = NewUuid(), down = NewUuid();
  panel_->CreateUser(up, kBytesPerGiB, 500, "2024-01-01");
  panel_->CreateUser(down, kBytesPerGiB, 500, "2024-01-01");
  Accept("n", 1, {{up, 70}, {down, 70}});
  const absl::Time old = absl::Now() - absl::Minutes(5);
  ASSERT_TRUE(journal_->RecordIntent({up, 500, 570, 70, old}).ok());
  ASSERT_TRUE(journal_->RecordIntent({down, 500, 570, 70, old}).ok());
  panel_->SetUsageInDb(up, 900);   // above what was written: taken as applied
  panel_->SetUsageInDb(down, 0);   // reset below it: bytes re-applied
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  applier.Stop();
  EXPECT_EQ(Pending(up), 0u);
  EXPECT_EQ(Pending(down), 70u);
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(panel_->Usage(up), 900u);
  EXPECT_EQ(panel_->Usage(down), 70u);
}

TEST_F(ApplierTest, ThreadAppliesDueBytesAndStopFinishesCleanly) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, 1'000'000, 0, "2024-01-01");
  SetRosterView(a, 1'000'000, 0);
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  Accept("n", 1, {{a, 999'500}});  // urgent: within the 1000-byte margin
  EXPECT_TRUE(hsync::testing::WaitFor([&] { return Pending(a) == 0; }, absl::Seconds(10)));
  applier.Stop();
  EXPECT_EQ(panel_->Usage(a), 999'500u);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_FALSE(patched_.empty());
  EXPECT_EQ(patched_.back().current_usage_bytes(), 999'500u);
}

TEST_F(ApplierTest, StopFinishesThePatchInFlightIncludingItsJournalUpdate) {
  const std::string a = NewUuid(), b = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 0, "2024-01-01");
  panel_->CreateUser(b, kBytesPerGiB, 0, "2024-01-01");
  options_.max_apply_delay = absl::ZeroDuration();
  Accept("n", 1, {{a, 10}});
  absl::SleepFor(absl::Milliseconds(5));
  Accept("n", 2, {{b, 20}});
  panel_->ResetCounters();
  panel_->AddFault({{"route", "patch_user"}, {"after_latency_ms", 1000}, {"remaining", 1}});
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return panel_->Usage(a) == 10; }, absl::Seconds(10)));
  const absl::Time stop_called = absl::Now();
  applier.Stop();  // the answer is still held back by the panel
  EXPECT_GT(absl::Now() - stop_called, absl::Milliseconds(300));
  EXPECT_TRUE(journal_->OpenIntents()->empty());
  EXPECT_EQ(Pending(a), 0u);
  // The next user was not started.
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 1);
  EXPECT_EQ(Pending(b), 20u);
}

// Runs one apply cycle in a forked child (its own journal connection and
// parent client) that the test SIGKILLs while its PATCH is held in the panel.
class ApplierCrashTest : public ApplierTest {
 protected:
  pid_t ForkApplierCycle() {
    panel_->ResetCounters();
    const std::string path = dir_ + "/journal.sqlite";
    journal_.reset();  // reopened by the child and afterwards by the test
    const pid_t pid = fork();
    if (pid == 0) {
      auto journal = Journal::Open(path);
      if (!journal.ok()) _exit(3);
      ParentClientOptions o = panel_->ClientOptions();
      o.request_timeout = absl::Seconds(60);
      auto client = ParentClient::Create(o);
      if (!client.ok()) _exit(4);
      Applier applier(journal->get(), ApiWriter(journal->get(), std::move(*client)), {}, options_);
      (void)applier.RunOneCycle(Later());
      _exit(0);
    }
    return pid;
  }

  void KillAndReopen(pid_t pid) {
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited early with " << WEXITSTATUS(wstatus);
    auto journal = Journal::Open(dir_ + "/journal.sqlite");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
  }
};

TEST_F(ApplierCrashTest, KilledBetweenPatchAndCompletionIsExactAfterRestart) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 1000, "2024-01-01");
  Accept("n", 1, {{a, 4321}});
  // The panel applies the PATCH, then holds the answer back.
  panel_->AddFault({{"route", "patch_user"}, {"after_latency_ms", 20000}, {"remaining", 1}});
  const pid_t pid = ForkApplierCycle();
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return panel_->Usage(a) == 5321; },
                                      absl::Seconds(15)));
  KillAndReopen(pid);
  ASSERT_EQ(journal_->OpenIntents()->size(), 1u);
  EXPECT_EQ(Pending(a), 4321u);

  panel_->ResetCounters();
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());  // resolves: the parent holds value_written
  applier.Stop();
  EXPECT_TRUE(journal_->OpenIntents()->empty());
  EXPECT_EQ(Pending(a), 0u);
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(panel_->Calls("PATCH patch_user"), 0);
  EXPECT_EQ(panel_->Usage(a), 5321u);
}

TEST_F(ApplierCrashTest, KilledWhileThePatchIsQueuedIsExactWhenItLandsLate) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 1000, "2024-01-01");
  Accept("n", 1, {{a, 4321}});
  // The panel holds the request 1 s BEFORE processing it: the child dies
  // first, the PATCH lands afterwards.
  panel_->AddFault({{"route", "patch_user"}, {"latency_ms", 1000}, {"remaining", 1}});
  const pid_t pid = ForkApplierCycle();
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return panel_->Calls("PATCH patch_user") == 1; },
                                      absl::Seconds(10)));
  KillAndReopen(pid);
  ASSERT_EQ(journal_->OpenIntents()->size(), 1u);

  options_.intent_settle_time = absl::Seconds(4);
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  ASSERT_TRUE(applier.RunOneCycle(absl::Now()).ok());  // whatever it sees: nothing doubled
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return panel_->Usage(a) == 5321; },
                                      absl::Seconds(10)));
  // The intent is now judged applied; nothing is re-sent.
  ASSERT_TRUE(applier.RunOneCycle(absl::Now() + absl::Minutes(5)).ok());
  applier.Stop();
  EXPECT_TRUE(journal_->OpenIntents()->empty());
  EXPECT_EQ(Pending(a), 0u);
  EXPECT_EQ(panel_->Usage(a), 5321u);
}

TEST_F(ApplierCrashTest, KilledWhileThePatchNeverReachedThePanelIsExactAfterRestart) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 1000, "2024-01-01");
  Accept("n", 1, {{a, 4321}});
  // The panel never answers nor processes this PATCH (it is lost).
  panel_->AddFault({{"route", "patch_user"}, {"timeout_rate", 1.0}, {"remaining", 1}});
  const pid_t pid = ForkApplierCycle();
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return panel_->Calls("PATCH patch_user") == 1; },
                                      absl::Seconds(10)));
  KillAndReopen(pid);
  ASSERT_EQ(journal_->OpenIntents()->size(), 1u);
  Applier& applier = MakeApplier();
  ASSERT_TRUE(applier.Start().ok());
  // After the settle time: "not applied" -> abandoned and applied again.
  ASSERT_TRUE(applier.RunOneCycle(absl::Now() + absl::Minutes(5)).ok());
  applier.Stop();
  EXPECT_EQ(panel_->Usage(a), 5321u);
  EXPECT_EQ(Pending(a), 0u);
  EXPECT_TRUE(journal_->OpenIntents()->empty());
}

}  // namespace
}  // namespace hsync::hub
