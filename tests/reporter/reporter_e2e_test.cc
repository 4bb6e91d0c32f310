// End to end, every part real: panelsim parent, the hub binary, a panelsim
// child generating traffic with the panel's read-modify-write gap, and the
// reporter binary. Bytes generated on the child must reach the parent
// exactly, across resets, SIGKILLed reporters, a hub outage (long enough for
// the outbox to merge), a child rolled back to a snapshot, and a wrong token;
// a user blocked on the parent must be disabled on the child quickly.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "common/panel_time.h"
#include "common/proto_time.h"
#include "tests/reporter/e2e_system.h"
#include "tests/reporter/state_snapshot.h"
#include "tests/support/child_process.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ReporterE2eTest : public ::testing::Test {
 protected:
  void StartSystem(E2eOptions options = {}) {
    auto sys = E2eSystem::Start(options);
    ASSERT_TRUE(sys.ok()) << sys.status();
    sys_ = *std::move(sys);
    ASSERT_TRUE(sys_->WaitRosterApplied(absl::Seconds(30)).ok()) << sys_->reporter().Log();
    auto before = sys_->ParentUsage();
    ASSERT_TRUE(before.ok());
    before_ = *before;
  }

  void RunTraffic(absl::Duration d) {
    ASSERT_TRUE(sys_->SetTraffic(true).ok());
    absl::SleepFor(d);
    ASSERT_TRUE(sys_->SetTraffic(false).ok());
  }

  // Waits until everything generated so far has reached the parent, then compares.
  void SettleAndCheckExact() {
    ASSERT_TRUE(sys_->SetTraffic(false).ok());
    absl::Status settled = sys_->WaitSettled(absl::Now(), absl::Seconds(60));
    ASSERT_TRUE(settled.ok()) << settled << "\nhub log:\n" << sys_->hub().Log().substr(0, 4000);
    absl::Status exact = sys_->CheckExact(before_);
    EXPECT_TRUE(exact.ok()) << exact;
    auto generated = sys_->Generated();
    uint64_t total = 0;
    for (const auto& [uuid, bytes] : *generated) total += bytes;
    std::cout << "generated on the child and added on the parent: " << total << " bytes over "
              << generated->size() << " users\n";
  }

  std::vector<std::string> UsersWithUsage() {
    std::vector<std::string> out;
    auto usage = sys_->ChildUsage();
    for (const auto& [uuid, bytes] : *usage) {
      if (bytes > 0) out.push_back(uuid);
    }
    return out;
  }

  std::unique_ptr<E2eSystem> sys_;
  std::map<std::string, uint64_t> before_;
};

TEST_F(ReporterE2eTest, BytesArriveExactlyWithReadModifyWriteGapAndResets) {
  ASSERT_NO_FATAL_FAILURE(StartSystem());
  RunTraffic(absl::Seconds(6));
  // The panel's reset, at a moment when everything was collected, on the day
  // of the current last_reset_time: only "usage fell below the watermark"
  // shows it, so a collect must see it before usage climbs past the old
  // watermark (a real panel always moves last_reset_time; see README).
  ASSERT_TRUE(sys_->WaitSettled(absl::Now(), absl::Seconds(60)).ok());
  std::vector<std::string> used = UsersWithUsage();
  ASSERT_GE(used.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto r = sys_->child().Control("POST", "/_sim/reset", absl::StrCat(R"({"uuid":")", used[i], R"("})"));
    ASSERT_TRUE(r.ok() && r->status == 200);
    r = sys_->child().Control("POST", "/_sim/add_traffic", absl::StrCat(R"({"uuid":")", used[i], R"(","bytes":12345})"));
    ASSERT_TRUE(r.ok() && r->status == 200);
  }
  ASSERT_TRUE(sys_->WaitSettled(absl::Now(), absl::Seconds(60)).ok());
  RunTraffic(absl::Seconds(6));
  // A reset on a new day (last_reset_time moves), after which usage climbs
  // past the old watermark before the next collect.
  ASSERT_TRUE(sys_->WaitSettled(absl::Now(), absl::Seconds(60)).ok());
  used = UsersWithUsage();
  const std::string tomorrow = FormatPanelDate(PanelToday() + 1);
  ASSERT_EQ(sys_->child().Control("POST", "/_sim/clock", absl::StrCat(R"({"today":")", tomorrow, R"("})"))
                ->status,
            200);
  auto usage = sys_->ChildUsage();
  for (size_t i = 0; i < 2 && i < used.size(); ++i) {
    const std::string& u = used[i];
    ASSERT_EQ(sys_->child().Control("POST", "/_sim/reset", absl::StrCat(R"({"uuid":")", u, R"("})"))->status, 200);
    const uint64_t bytes = (*usage)[u] + 3'000'000;
    ASSERT_EQ(sys_->child()
                  .Control("POST", "/_sim/add_traffic", absl::StrCat(R"({"uuid":")", u, R"(","bytes":)", bytes, "}"))
                  ->status,
              200);
  }
  RunTraffic(absl::Seconds(3));
  SettleAndCheckExact();
  auto status = sys_->ReporterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->outbox_reports(), 0u);
  EXPECT_GT(status->last_seq_acked(), 0u);
}

// Waits until a statement starting with `prefix` is running (e.g. blocked on
// a lock the test holds) in the shared MariaDB.
bool WaitForStatement(MariaDbConnection& conn, const std::string& prefix) {
  return WaitFor(
      [&] {
        auto rs = conn.Query(absl::StrCat("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ",
                                          conn.Quote(prefix + "%")));
        return rs.ok() && rs->rows[0][0] != "0";
      },
      absl::Seconds(20));
}

TEST_F(ReporterE2eTest, ReporterKilledAtRandomPointsAndRestartedStaysExact) {
  ASSERT_NO_FATAL_FAILURE(StartSystem());
  const std::string state = "`" + sys_->child_db() + "_sync`";
  auto locker = MariaDbConnection::Connect(SharedMariaDb().Options());
  ASSERT_TRUE(locker.ok());
  MariaDbConnection& db = **locker;
  ASSERT_TRUE(sys_->SetTraffic(true).ok());

  // 1. At random moments.
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(100, 5500);
  for (int i = 0; i < 5; ++i) {
    absl::SleepFor(absl::Milliseconds(delay_ms(rng)));
    sys_->reporter().Kill();
    ASSERT_TRUE(sys_->reporter().Start().ok());
  }

  // 2. Mid-transaction: a collect has read usage and waits to write watermarks.
  ASSERT_TRUE(db.Begin().ok());
  ASSERT_TRUE(db.Query(absl::StrCat("SELECT * FROM ", state, ".watermark FOR UPDATE")).ok());
  ASSERT_TRUE(WaitForStatement(db, absl::StrCat("INSERT INTO ", state, ".`watermark`")));
  sys_->reporter().Kill();
  ASSERT_TRUE(db.Rollback().ok());
  ASSERT_TRUE(sys_->reporter().Start().ok());

  // 3. After the outbox write, before the send: the hub is down.
  sys_->hub().Kill();
  ASSERT_TRUE(WaitFor([&] {
    auto s = sys_->ReporterStatus();
    return s.ok() && s->outbox_reports() >= 1;
  }, absl::Seconds(20)));
  sys_->reporter().Kill();
  ASSERT_TRUE(sys_->reporter().Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    auto s = sys_->ReporterStatus();
    return s.ok() && s->outbox_reports() >= 1;
  }, absl::Seconds(20)));

  // 4. After the send, before the ack is recorded: the hub journals and acks,
  // the reporter's ack transaction waits for a lock the test holds.
  ASSERT_TRUE(db.Begin().ok());
  ASSERT_TRUE(db.Query(absl::StrCat("SELECT * FROM ", state, ".meta FOR UPDATE")).ok());
  ASSERT_TRUE(sys_->hub().Start().ok());
  ASSERT_TRUE(WaitForStatement(db, absl::StrCat("UPDATE ", state, ".`meta` SET last_acked_seq")));
  auto hub_status = sys_->hub().Status();
  ASSERT_TRUE(hub_status.ok() && hub_status->nodes_size() == 1);
  const uint64_t hub_seq = hub_status->nodes(0).last_seq();
  sys_->reporter().Kill();
  ASSERT_TRUE(db.Rollback().ok());
  ASSERT_TRUE(sys_->reporter().Start().ok());
  std::cout << "killed 5 times at random, once mid-collect, once with reports unsent, once with seq "
            << hub_seq << " accepted by the hub but not recorded as acknowledged\n";

  absl::SleepFor(absl::Seconds(2));
  SettleAndCheckExact();
  auto hub = sys_->hub().Status();
  ASSERT_TRUE(hub.ok());
  EXPECT_GE(hub->nodes(0).duplicates(), 1u);  // the resend of step 4, acked and ignored
  // One stream throughout: the state survived every kill.
  const std::string log = sys_->reporter().Log();
  size_t streams = 0;
  for (size_t at = log.find("new stream"); at != std::string::npos; at = log.find("new stream", at + 1)) ++streams;
  EXPECT_EQ(streams, 1u);
}

TEST_F(ReporterE2eTest, HubDownForSeveralCyclesOutboxGrowsThenDrainsInOrder) {
  ASSERT_NO_FATAL_FAILURE(StartSystem());
  ASSERT_TRUE(sys_->SetTraffic(true).ok());
  absl::SleepFor(absl::Seconds(3));
  sys_->hub().Kill();
  uint64_t max_outbox = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = sys_->ReporterStatus();
        if (s.ok()) max_outbox = std::max(max_outbox, s->outbox_reports());
        return max_outbox >= 3;
      },
      absl::Seconds(40)));
  auto down = sys_->ReporterStatus();
  ASSERT_TRUE(down.ok());
  EXPECT_FALSE(down->hub_connected());
  EXPECT_GT(down->outbox_bytes(), 0u);
  EXPECT_GT(down->outbox_oldest_at().seconds(), 0);
  EXPECT_GT(down->last_seq_written(), down->last_seq_acked());
  std::cout << "hub down: outbox grew to " << max_outbox << " reports, " << down->outbox_bytes() << " bytes\n";
  ASSERT_TRUE(sys_->hub().Start().ok());
  SettleAndCheckExact();
  auto reporter = sys_->ReporterStatus();
  auto hub = sys_->hub().Status();
  ASSERT_TRUE(reporter.ok() && hub.ok());
  ASSERT_EQ(hub->nodes_size(), 1);
  const auto& node = hub->nodes(0);
  EXPECT_EQ(node.stream_id(), reporter->stream_id());
  EXPECT_EQ(node.last_seq(), reporter->last_seq_written());
  // Every seq accepted exactly once, none skipped: the outbox drained in order.
  EXPECT_EQ(node.reports_accepted(), reporter->last_seq_written());
}

// A child "VM" snapshotted while one report waits for an unreachable hub
// (reporter stopped, every counter collected), then run on: the hub comes
// back and accepts that report and several more. The snapshot is restored
// (the reporter's state tables and the panel's counters) and the reporter
// started again: it resends the waiting report, the hub acknowledges it with
// a seq this state never assigned, and the reporter starts a new stream.
// Every byte generated reaches the parent exactly once.
TEST_F(ReporterE2eTest, ChildRolledBackToASnapshotRestartsTheStreamAndStaysExact) {
  E2eOptions options;
  const int metrics_port = PickFreePort();
  options.reporter_metrics_listen = absl::StrCat("127.0.0.1:", metrics_port);
  ASSERT_NO_FATAL_FAILURE(StartSystem(options));
  RunTraffic(absl::Seconds(3));
  ASSERT_TRUE(sys_->WaitSettled(absl::Now(), absl::Seconds(60)).ok());
  auto db = MariaDbConnection::Connect(SharedMariaDb().Options());
  ASSERT_TRUE(db.ok());
  const std::string state_db = sys_->child_db() + "_sync";

  sys_->hub().Kill();
  std::vector<std::string> used = UsersWithUsage();
  ASSERT_GE(used.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto r = sys_->child().Control("POST", "/_sim/add_traffic",
                                   absl::StrCat(R"({"uuid":")", used[i], R"(","bytes":7654321})"));
    ASSERT_TRUE(r.ok() && r->status == 200);
  }
  ASSERT_TRUE(WaitFor([&] {
    auto s = sys_->ReporterStatus();
    return s.ok() && s->outbox_reports() >= 1;
  }, absl::Seconds(30)));
  sys_->reporter().Kill();
  ASSERT_EQ((*db)->Query(absl::StrCat("SELECT COUNT(*) FROM `", state_db, "`.outbox"))->rows[0][0], "1");
  StateSnapshot snapshot(state_db, sys_->child_db());
  ASSERT_TRUE(snapshot.Take(**db).ok());
  const uint64_t assigned_at_snapshot =
      std::stoull(*(*db)->Query(absl::StrCat("SELECT next_seq - 1 FROM `", state_db, "`.meta"))->rows[0][0]);

  // The timeline that will be lost: the report and more reach the hub.
  ASSERT_TRUE(sys_->hub().Start().ok());
  ASSERT_TRUE(sys_->reporter().Start().ok());
  RunTraffic(absl::Seconds(12));
  ASSERT_TRUE(sys_->WaitSettled(absl::Now(), absl::Seconds(60)).ok());
  auto lost = sys_->ReporterStatus();
  ASSERT_TRUE(lost.ok());
  // Two seqs above the snapshot's: even if the restored reporter writes one
  // more before it resends, the hub's ack is above anything it assigned.
  ASSERT_GE(lost->last_seq_acked(), assigned_at_snapshot + 2);
  const uint64_t stream_before = lost->stream_id();
  sys_->reporter().Kill();

  ASSERT_TRUE(snapshot.Restore(**db).ok());
  ASSERT_TRUE(sys_->reporter().Start().ok());
  RunTraffic(absl::Seconds(6));
  SettleAndCheckExact();
  auto status = sys_->ReporterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->stream_restarts(), 1u);
  EXPECT_NE(status->stream_id(), stream_before);
  EXPECT_THAT(sys_->reporter().Log(), HasSubstr("the hub is ahead of this reporter's state"));
  auto metrics = ScrapeMetrics(metrics_port);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Get("hsync_reporter_stream_restarts_total"), 1);
}

// The hub away for several collects with outbox.merge_after_rows = 2: the
// outbox stays at two rows, the reports never sent are merged, and when the
// hub is back every byte arrives once, in seqs without gaps.
TEST_F(ReporterE2eTest, LongHubOutageMergesTheOutboxAndStaysExact) {
  E2eOptions options;
  options.reporter_extra = "[outbox]\nmerge_after_rows = 2\n";
  const int metrics_port = PickFreePort();
  options.reporter_metrics_listen = absl::StrCat("127.0.0.1:", metrics_port);
  ASSERT_NO_FATAL_FAILURE(StartSystem(options));
  ASSERT_TRUE(sys_->SetTraffic(true).ok());
  absl::SleepFor(absl::Seconds(2));
  sys_->hub().Kill();
  uint64_t max_outbox = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = sys_->ReporterStatus();
        if (s.ok()) max_outbox = std::max(max_outbox, s->outbox_reports());
        return s.ok() && s->outbox_merges() >= 2;
      },
      absl::Seconds(60)));
  auto down = sys_->ReporterStatus();
  ASSERT_TRUE(down.ok());
  std::cout << "hub down: outbox at most " << max_outbox << " reports, merged "
            << down->outbox_merges() << " times, seq written " << down->last_seq_written() << "\n";
  EXPECT_LE(max_outbox, 2u);
  auto metrics = ScrapeMetrics(metrics_port);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_GE(metrics->Get("hsync_reporter_outbox_merges_total"), 2);
  EXPECT_EQ(metrics->Get("hsync_reporter_stream_restarts_total"), 0);
  ASSERT_TRUE(sys_->hub().Start().ok());
  SettleAndCheckExact();
  auto reporter = sys_->ReporterStatus();
  auto hub = sys_->hub().Status();
  ASSERT_TRUE(reporter.ok() && hub.ok());
  ASSERT_EQ(hub->nodes_size(), 1);
  EXPECT_EQ(hub->nodes(0).last_seq(), reporter->last_seq_written());
  EXPECT_EQ(hub->nodes(0).reports_accepted(), reporter->last_seq_written());
  EXPECT_EQ(reporter->stream_restarts(), 0u);
}

TEST_F(ReporterE2eTest, UserBlockedOnTheParentIsDisabledOnTheChildWithinTwoSeconds) {
  ASSERT_NO_FATAL_FAILURE(StartSystem());
  std::string uuid;
  for (const auto& [u, bytes] : before_) {
    if (sys_->ChildColumn(u, "enable") == "1") {
      uuid = u;
      break;
    }
  }
  ASSERT_FALSE(uuid.empty());
  auto counters_before = sys_->child().Control("GET", "/_sim/counters");
  const uint64_t roster_before = sys_->hub().Status()->roster_version();
  const absl::Time patched_at = absl::Now();
  auto patched = sys_->parent().Api("PATCH", absl::StrCat("/admin/user/", uuid, "/"), R"({"enable":false})");
  ASSERT_TRUE(patched.ok() && patched->status == 200) << (patched.ok() ? patched->body : "");
  absl::Time hub_saw = absl::InfinitePast();
  absl::Time child_disabled = absl::InfinitePast();
  ASSERT_TRUE(WaitFor(
      [&] {
        if (hub_saw == absl::InfinitePast()) {
          auto h = sys_->hub().Status();
          if (h.ok() && h->roster_version() > roster_before) hub_saw = absl::Now();
        }
        if (sys_->ChildColumn(uuid, "enable") == "0") {
          child_disabled = absl::Now();
          return true;
        }
        return false;
      },
      absl::Seconds(15)));
  if (hub_saw == absl::InfinitePast()) hub_saw = child_disabled;  // both within one poll
  const absl::Duration latency = child_disabled - hub_saw;
  std::cout << "blocked user disabled on the child " << absl::FormatDuration(latency)
            << " after the hub saw the change (polled every ~20 ms), "
            << absl::FormatDuration(child_disabled - patched_at)
            << " after the PATCH on the parent (includes the hub's 1 s roster poll)\n";
  EXPECT_LT(latency, absl::Seconds(2));
  // The child panel was told to apply (debounced, once).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c = sys_->child().Control("GET", "/_sim/counters");
        return c.ok() && c->body != counters_before->body && c->body.find("\"apply_users\":0") == std::string::npos;
      },
      absl::Seconds(10)));
  // Unblocked on the parent: enabled again.
  ASSERT_EQ(sys_->parent().Api("PATCH", absl::StrCat("/admin/user/", uuid, "/"), R"({"enable":true})")->status, 200);
  EXPECT_TRUE(WaitFor([&] { return sys_->ChildColumn(uuid, "enable") == "1"; }, absl::Seconds(10)));
}

TEST_F(ReporterE2eTest, WrongTokenIsAClearErrorAndLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartSystem());
  ASSERT_TRUE(sys_->SetTraffic(true).ok());
  sys_->reporter().Kill();
  sys_->reporter().SetToken("not-the-node-token");
  ASSERT_TRUE(sys_->reporter().Start().ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = sys_->ReporterStatus();
        return s.ok() && s->outbox_reports() >= 1 && s->last_error().find("UNAUTHENTICATED") != std::string::npos;
      },
      absl::Seconds(30)))
      << sys_->reporter().Log();
  auto status = sys_->ReporterStatus();
  EXPECT_THAT(status->last_error(), HasSubstr("token"));
  auto [code, out] = sys_->reporter().StatusCommand();
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(sys_->reporter().Log(), Not(HasSubstr("not-the-node-token")));
  // The operator fixes the token: everything collected meanwhile arrives.
  sys_->reporter().Kill();
  sys_->reporter().SetToken("e2e-node-token");
  ASSERT_TRUE(sys_->reporter().Start().ok());
  absl::SleepFor(absl::Seconds(1));
  SettleAndCheckExact();
}

}  // namespace
}  // namespace hsync::testing
