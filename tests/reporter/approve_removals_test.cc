// What the mass-removal guard holds back, end to end: persisted in the state
// schema (also one made before the held tables existed), shown by `status`
// and /metrics across a restart of the real binary, and applied by
// `hiddify-sync-reporter approve-removals` (without a terminal only with
// --yes; interactively after "y") while the daemon runs, which then leaves
// the removals alone. Also roster users the child's database refuses: skipped
// alone, shown in status and /metrics, logged once, retried.
#include "reporter/ops/approve_removals_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "reporter/roster/held_removals.h"
#include "reporter/roster/roster_applier.h"
#include "reporter/state/state_store.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/fake_hub.h"
#include "tests/reporter/reporter_process.h"
#include "tests/support/child_process.h"
#include "tests/support/metrics_scrape.h"

namespace hsync::reporter {
namespace {

using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::User;
using hsync::testing::BuiltBinary;
using hsync::testing::ChildDb;
using hsync::testing::ChildProcess;
using hsync::testing::FakeHub;
using hsync::testing::MakeTempDir;
using hsync::testing::PickFreePort;
using hsync::testing::RandomUuid;
using hsync::testing::ReadFileOrEmpty;
using hsync::testing::ReporterProcess;
using hsync::testing::ReporterSetup;
using hsync::testing::ScrapeMetrics;
using hsync::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;

User MakeUser(const std::string& uuid, const std::string& name) {
  User u;
  u.set_uuid(uuid);
  u.set_name(name);
  u.set_usage_limit_bytes(uint64_t{1000} << 30);
  u.set_package_days(90);
  u.set_mode("no_reset");
  u.set_enable(true);
  u.set_is_active(true);
  return u;
}

RosterUpdate Full(uint64_t version, const std::vector<User>& users) {
  RosterUpdate r;
  r.set_version(version);
  r.set_full(true);
  for (const auto& u : users) *r.add_upserts() = u;
  return r;
}

std::vector<User> Users(size_t n) {
  std::vector<User> users;
  for (size_t i = 0; i < n; ++i) users.push_back(MakeUser(RandomUuid(), absl::StrCat("user-", i)));
  return users;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Runs `hiddify-sync-reporter approve-removals` with stdin from /dev/null.
std::pair<int, std::string> ApproveCommand(const std::string& config_path, bool yes) {
  const std::string out = MakeTempDir("approve") + "/out";
  std::string command = absl::StrCat("exec '", BuiltBinary("hiddify-sync-reporter"),
                                     "' approve-removals --config '", config_path, "'",
                                     yes ? " --yes" : "", " < /dev/null");
  auto process = ChildProcess::Spawn({"/bin/sh", "-c", command}, out);
  if (!process.ok()) return {-1, std::string(process.status().message())};
  auto code = process->Wait(absl::Seconds(30));
  return {code.ok() ? *code : -1, ReadFileOrEmpty(out)};
}

TEST(HeldRemovalsSchemaTest, AnExistingStateSchemaGainsTheHeldTables) {
  ChildDb child("hsch");
  StateStore store(child.state_db(), false);
  auto first = store.EnsureSchema(child.conn());
  ASSERT_TRUE(first.ok()) << first.status();
  // A state schema as the previous version made it: no held tables, some state.
  child.Exec(absl::StrCat("DROP TABLE `", child.state_db(), "`.held_removal, `", child.state_db(),
                          "`.held_removal_trip"));
  child.Exec(absl::StrCat("INSERT INTO `", child.state_db(),
                          "`.watermark (user_id, uuid, reported_bytes, last_online_reported, "
                          "last_reset_seen) VALUES (7, '",
                          RandomUuid(), "', 1234, NULL, NULL)"));
  auto second = store.EnsureSchema(child.conn());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->stream_id, first->stream_id);
  EXPECT_EQ(child.CountRows(absl::StrCat("`", child.state_db(), "`.watermark WHERE reported_bytes = 1234")), 1u);
  EXPECT_EQ(child.CountRows(absl::StrCat("`", child.state_db(), "`.held_removal")), 0u);
  auto summary = HeldRemovals(&store).Summary(child.conn());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->count, 0u);
}

class ApproveRemovalsCommandTest : public ::testing::Test {
 protected:
  ApproveRemovalsCommandTest() : child_("apr"), store_(child_.state_db(), false) {
    EXPECT_TRUE(store_.EnsureSchema(child_.conn()).ok());
  }

  // A config for the command (the daemon is never started here).
  std::unique_ptr<ReporterProcess> Config(const std::string& extra = "") {
    ReporterSetup setup;
    setup.hub_address = "127.0.0.1:1";
    setup.panel_db = child_.panel_db();
    setup.state_db = child_.state_db();
    setup.extra = extra;
    return std::make_unique<ReporterProcess>(setup);
  }

  // 20 users, then a roster without the first 12: held back.
  std::vector<User> HoldTwelve(RemovePolicy policy) {
    RosterApplyOptions options;
    options.panel_database = child_.panel_db();
    options.remove_policy = policy;
    RosterApplier applier(&store_, options);
    std::vector<User> users = Users(20);
    EXPECT_TRUE(applier.Apply(child_.conn(), Full(1, users)).ok());
    auto tripped = applier.Apply(child_.conn(), Full(2, std::vector<User>(users.begin() + 12, users.end())));
    EXPECT_TRUE(tripped.ok() && tripped->guard_tripped && tripped->held == 12);
    return users;
  }

  int Run(const std::string& config_path, bool yes, bool interactive, const std::string& answer,
          std::string* output) {
    ApproveRemovalsRequest request;
    request.config_path = config_path;
    request.yes = yes;
    request.interactive = interactive;
    std::istringstream in(answer);
    std::ostringstream out, err;
    const int code = RunApproveRemovalsCommand(request, in, out, err);
    *output = out.str() + err.str();
    return code;
  }

  uint64_t Enabled() { return child_.CountRows(child_.UserTable() + " WHERE enable = 1"); }
  uint64_t Held() { return child_.CountRows(absl::StrCat("`", child_.state_db(), "`.held_removal")); }

  ChildDb child_;
  StateStore store_;
};

TEST_F(ApproveRemovalsCommandTest, NothingHeldSaysSoAndSucceeds) {
  auto config = Config();
  std::string out;
  EXPECT_EQ(Run(config->config_path(), false, false, "", &out), 0);
  EXPECT_THAT(out, HasSubstr("No removals are held back"));
}

TEST_F(ApproveRemovalsCommandTest, AsksOnATerminalAndAppliesOnlyAfterYes) {
  std::vector<User> users = HoldTwelve(RemovePolicy::kDisable);
  auto config = Config();
  std::string out;
  EXPECT_EQ(Run(config->config_path(), false, true, "n\n", &out), 1);
  EXPECT_THAT(out, HasSubstr("Disable these 12 users? [y/N]"));
  EXPECT_THAT(out, HasSubstr("Nothing changed"));
  EXPECT_EQ(Enabled(), 20u);
  EXPECT_EQ(Held(), 12u);

  EXPECT_EQ(Run(config->config_path(), false, true, "y\n", &out), 0) << out;
  for (int i = 0; i < 12; ++i) {
    EXPECT_THAT(out, HasSubstr(absl::StrCat(users[i].uuid(), "  user-", i, "\n")));
  }
  EXPECT_THAT(out, Not(HasSubstr(users[12].uuid())));
  EXPECT_THAT(out, HasSubstr("12 held users; 12 will be disabled"));
  EXPECT_THAT(out, HasSubstr("remove_policy = disable"));
  EXPECT_THAT(out, HasSubstr("Disabled 12 users; 12 held removals cleared."));
  EXPECT_EQ(Enabled(), 8u);
  EXPECT_EQ(Held(), 0u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(child_.Column(users[i].uuid(), "enable"), "0");
}

TEST_F(ApproveRemovalsCommandTest, DeletesWithTheDeletePolicyAndSkipsUsersBackOnTheParent) {
  std::vector<User> users = HoldTwelve(RemovePolicy::kDelete);
  auto config = Config("[roster]\nremove_policy = \"delete\"\n");
  // One of them is deleted by hand meanwhile: only forgotten.
  child_.Exec(absl::StrCat("DELETE FROM ", child_.UserTable(), " WHERE uuid = '", users[0].uuid(), "'"));
  std::string out;
  EXPECT_EQ(Run(config->config_path(), true, false, "", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("remove_policy = delete"));
  EXPECT_THAT(out, HasSubstr("12 held users; 11 will be deleted"));
  EXPECT_THAT(out, HasSubstr("no longer on this panel"));
  EXPECT_THAT(out, HasSubstr("Deleted 11 users; 12 held removals cleared."));
  EXPECT_EQ(child_.CountRows(child_.UserTable()), 8u);
  EXPECT_EQ(Held(), 0u);
}

// The reporter daemon on `child`, following `hub`, /metrics on `metrics_port`.
ReporterSetup DaemonSetup(ChildDb& child, FakeHub& hub, int metrics_port) {
  ReporterSetup setup;
  setup.hub_address = hub.address();
  setup.panel_db = child.panel_db();
  setup.state_db = child.state_db();
  setup.metrics_listen = absl::StrCat("127.0.0.1:", metrics_port);
  return setup;
}

TEST(ApproveRemovalsBinaryTest, HeldRemovalsSurviveARestartShowInStatusAndAreApprovedByTheCommand) {
  ChildDb child("aprb");
  auto hub = FakeHub::Start("node-token");
  ASSERT_NE(hub, nullptr);
  std::vector<User> users = Users(20);
  hub->SetRoster(Full(1, users));
  const int metrics_port = PickFreePort();
  ReporterProcess reporter(DaemonSetup(child, *hub, metrics_port));
  ASSERT_TRUE(reporter.Start().ok());
  auto enabled = [&] { return child.CountRows(child.UserTable() + " WHERE enable = 1"); };
  ASSERT_TRUE(WaitFor([&] { return enabled() == 20; }, absl::Seconds(30))) << reporter.Log();

  // The parent removes 15 of 20 (more than max(10, 25% of 20)) in one delta.
  RosterUpdate delta;
  delta.set_version(2);
  for (int i = 0; i < 15; ++i) delta.add_removed_uuids(users[i].uuid());
  const std::vector<User> remaining(users.begin() + 15, users.end());
  hub->SetRoster(Full(2, remaining));
  hub->Broadcast(delta);
  std::string status;
  ASSERT_TRUE(WaitFor([&] {
    status = reporter.StatusCommand().second;
    return status.find("held removals:  15 since") != std::string::npos;
  }, absl::Seconds(20))) << status << reporter.Log();
  EXPECT_THAT(status, HasSubstr("DEGRADED"));
  EXPECT_THAT(status, HasSubstr("approve-removals"));
  EXPECT_THAT(status, HasSubstr("would have disabled 15 of 20"));
  EXPECT_EQ(enabled(), 20u);
  auto m = ScrapeMetrics(metrics_port);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->Get("hsync_reporter_held_removals"), 15);
  EXPECT_EQ(m->Get("hsync_reporter_guard_trips_total"), 1);

  // Restart: still held, and the full roster (still without them) does not trip again.
  reporter.Kill();
  ASSERT_TRUE(reporter.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    status = reporter.StatusCommand().second;
    return status.find("roster:         version 2 applied") != std::string::npos;
  }, absl::Seconds(30))) << status << reporter.Log();
  EXPECT_THAT(status, HasSubstr("held removals:  15 since"));
  EXPECT_THAT(status, HasSubstr("removal guard:  0 trips"));
  EXPECT_EQ(enabled(), 20u);

  // Without a terminal and without --yes: the list, and nothing changes.
  auto [refused_code, listing] = ApproveCommand(reporter.config_path(), false);
  EXPECT_EQ(refused_code, 1) << listing;
  for (int i = 0; i < 15; ++i) {
    EXPECT_THAT(listing, HasSubstr(absl::StrCat(users[i].uuid(), "  user-", i)));
  }
  EXPECT_THAT(listing, HasSubstr("15 held users; 15 will be disabled"));
  EXPECT_THAT(listing, HasSubstr("add --yes"));
  EXPECT_EQ(enabled(), 20u);

  // With --yes, while the daemon runs.
  auto [code, applied] = ApproveCommand(reporter.config_path(), true);
  EXPECT_EQ(code, 0) << applied;
  EXPECT_THAT(applied, HasSubstr("Disabled 15 users; 15 held removals cleared."));
  EXPECT_EQ(enabled(), 5u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(child.Column(users[i].uuid(), "enable"), "0");
  ASSERT_TRUE(WaitFor([&] {
    status = reporter.StatusCommand().second;
    return status.find("held removals:  0\n") != std::string::npos;
  }, absl::Seconds(20))) << status;

  // The daemon leaves them removed: a later delta and a reconnect's full roster.
  User renamed = remaining[0];
  renamed.set_name("renamed");
  RosterUpdate later;
  later.set_version(3);
  *later.add_upserts() = renamed;
  std::vector<User> now = remaining;
  now[0] = renamed;
  hub->SetRoster(Full(3, now));
  hub->Broadcast(later);
  ASSERT_TRUE(WaitFor([&] { return child.Column(renamed.uuid(), "name") == "renamed"; },
                      absl::Seconds(20)));
  reporter.Kill();
  ASSERT_TRUE(reporter.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    status = reporter.StatusCommand().second;
    return status.find("roster:         version 3 applied") != std::string::npos;
  }, absl::Seconds(30))) << status;
  EXPECT_EQ(enabled(), 5u);
  EXPECT_THAT(status, HasSubstr("held removals:  0\n"));
  EXPECT_THAT(status, HasSubstr("removal guard:  0 trips"));
}

TEST(ApproveRemovalsBinaryTest, ARefusedUserIsSkippedShownLoggedOnceAndRetried) {
  ChildDb child("skpb");
  std::vector<User> users = Users(5);
  const std::string refused = users[2].uuid();
  child.Exec(absl::StrCat("CREATE TRIGGER `", child.panel_db(), "`.refuse_one BEFORE INSERT ON ",
                          child.UserTable(), " FOR EACH ROW IF NEW.uuid = '", refused,
                          "' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test';"
                          " END IF"));
  auto hub = FakeHub::Start("node-token");
  hub->SetRoster(Full(1, users));
  const int metrics_port = PickFreePort();
  ReporterProcess reporter(DaemonSetup(child, *hub, metrics_port));
  ASSERT_TRUE(reporter.Start().ok());
  std::string status;
  ASSERT_TRUE(WaitFor([&] {
    status = reporter.StatusCommand().second;
    return status.find("skipped users:  1") != std::string::npos;
  }, absl::Seconds(30))) << status << reporter.Log();
  EXPECT_THAT(status, HasSubstr(absl::StrCat(refused, ": the child's database refused it: refused by the test")));
  EXPECT_EQ(child.CountRows(child.UserTable()), 4u);  // the others, in the same update
  auto m = ScrapeMetrics(metrics_port);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->Get("hsync_reporter_roster_skipped_users"), 1);

  // A delta not carrying it: still skipped, not logged again.
  User renamed = users[0];
  renamed.set_name("renamed");
  RosterUpdate delta;
  delta.set_version(2);
  *delta.add_upserts() = renamed;
  hub->Broadcast(delta);
  ASSERT_TRUE(WaitFor([&] { return child.Column(renamed.uuid(), "name") == "renamed"; },
                      absl::Seconds(20)));
  // The same refusal carried again: not logged again either.
  RosterUpdate again;
  again.set_version(3);
  *again.add_upserts() = users[2];
  hub->Broadcast(again);
  ASSERT_TRUE(WaitFor([&] {
    return reporter.StatusCommand().second.find("roster:         version 3") != std::string::npos;
  }, absl::Seconds(20)));
  EXPECT_THAT(reporter.StatusCommand().second, HasSubstr("skipped users:  1"));
  EXPECT_EQ(Count(reporter.Log(), absl::StrCat("skipping user ", refused)), 1u) << reporter.Log();

  // Once the database accepts it, the next update carrying it creates it.
  child.Exec(absl::StrCat("DROP TRIGGER `", child.panel_db(), "`.refuse_one"));
  RosterUpdate retry;
  retry.set_version(4);
  *retry.add_upserts() = users[2];
  hub->Broadcast(retry);
  ASSERT_TRUE(WaitFor([&] { return child.Column(refused, "id").has_value(); }, absl::Seconds(20)))
      << reporter.Log();
  ASSERT_TRUE(WaitFor([&] {
    status = reporter.StatusCommand().second;
    return status.find("skipped users:  0") != std::string::npos;
  }, absl::Seconds(20))) << status;
  EXPECT_THAT(reporter.Log(), HasSubstr(absl::StrCat("user ", refused, " is no longer skipped")));
}

}  // namespace
}  // namespace hsync::reporter
