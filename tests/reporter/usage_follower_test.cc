// usage_mode = "follow" on a real MariaDB: the child's current_usage becomes
// the parent's value plus the bytes collect has not reported yet, moved only
// by exact offsets together with the watermark, so every byte the child
// carried is reported exactly once: under concurrent atomic adds by the
// panel, with reported bytes in flight, after a parent reset, an admin edit,
// a child reset first or a parent reset first. The child's own is_active
// follows the parent's. A panel without add_usage_json is left alone.
#include "reporter/collect/usage_follower.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/panel_time.h"
#include "reporter/collect/collector.h"
#include "reporter/roster/roster_applier.h"
#include "tests/reporter/child_db.h"
#include "tests/support/test_mariadb.h"

namespace hsync::reporter {
namespace {

using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::User;
using hsync::testing::ChildDb;
using hsync::testing::RandomUuid;

constexpr uint64_t kGiB = uint64_t{1} << 30;

std::string Today() {
  return FormatPanelDate(absl::CivilDay(absl::ToCivilSecond(absl::Now(), PanelTimeZone())));
}

User ParentUser(const std::string& uuid, uint64_t usage, uint64_t limit = 100 * kGiB) {
  User u;
  u.set_uuid(uuid);
  u.set_name("u");
  u.set_usage_limit_bytes(limit);
  u.set_current_usage_bytes(usage);
  u.set_package_days(30);
  u.set_start_date(Today());
  u.set_mode("daily");
  u.set_last_reset_time("2024-03-01 00:00:00");
  u.set_enable(true);
  u.set_is_active(usage <= limit);
  return u;
}

RosterUpdate Delta(uint64_t version, const std::vector<User>& users) {
  RosterUpdate r;
  r.set_version(version);
  for (const auto& u : users) *r.add_upserts() = u;
  return r;
}

class UsageFollowerTest : public ::testing::Test {
 protected:
  UsageFollowerTest()
      : child_("ufw"), store_(child_.state_db(), false),
        follower_(&store_, child_.panel_db(), nullptr) {
    EXPECT_TRUE(store_.EnsureSchema(child_.conn()).ok());
    child_.SetAtomicUsageProcedure(true);
    options_.node_id = "n";
    options_.panel_database = child_.panel_db();
    options_.min_report_bytes = 0;
    RosterApplyOptions ro;
    ro.panel_database = child_.panel_db();
    applier_ = std::make_unique<RosterApplier>(&store_, ro);
    applier_->set_usage_hook(&follower_);
  }

  void Collect(MariaDbConnection* conn = nullptr) {
    Collector collector(&store_, options_);
    auto r = collector.CollectOnce(conn != nullptr ? *conn : child_.conn(), absl::Now());
    ASSERT_TRUE(r.ok()) << r.status();
  }

  void Roster(const std::vector<User>& users, MariaDbConnection* conn = nullptr) {
    auto r = applier_->Apply(conn != nullptr ? *conn : child_.conn(), Delta(++version_, users));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->skipped.empty()) << r->skipped[0].reason;
  }

  uint64_t Watermark(const std::string& uuid) {
    auto rs = child_.conn().Query(absl::StrCat("SELECT reported_bytes FROM `", child_.state_db(),
                                               "`.watermark WHERE uuid = '", uuid, "'"));
    return rs.ok() && !rs->rows.empty() ? std::stoull(*rs->rows[0][0]) : 0;
  }

  // Bytes reported for `uuid` over all reports written so far.
  uint64_t Reported(const std::string& uuid) { return child_.OutboxBytes()[uuid]; }

  ChildDb child_;
  StateStore store_;
  UsageFollower follower_;
  CollectOptions options_;
  std::unique_ptr<RosterApplier> applier_;
  uint64_t version_ = 0;
};

TEST_F(UsageFollowerTest, CounterShowsTheParentsValuePlusTheUnreportedBytes) {
  const std::string a = RandomUuid();
  Roster({ParentUser(a, 7 * kGiB)});  // created: the parent's value, nothing to report
  EXPECT_EQ(child_.Usage(a), 7 * kGiB);
  EXPECT_EQ(Watermark(a), 7 * kGiB);
  Collect();
  EXPECT_EQ(Reported(a), 0u);

  child_.CallAddUsage(a, 5000);  // carried here, not reported yet
  Roster({ParentUser(a, 8 * kGiB)});  // other children's bytes reached the parent
  EXPECT_EQ(child_.Usage(a), 8 * kGiB + 5000);
  EXPECT_EQ(Watermark(a), 8 * kGiB);
  Collect();
  EXPECT_EQ(Reported(a), 5000u);  // exactly the local bytes, once
  EXPECT_TRUE(follower_.following());
}

TEST_F(UsageFollowerTest, ReportedBytesInFlightShowAgainWhenTheParentHasThem) {
  const std::string a = RandomUuid();
  Roster({ParentUser(a, 1 * kGiB)});
  child_.CallAddUsage(a, 3'000'000);
  Collect();  // 3 MB in the outbox, not yet in the parent's value
  child_.CallAddUsage(a, 100);
  Roster({ParentUser(a, 1 * kGiB)});  // e.g. an admin renamed the user meanwhile
  EXPECT_EQ(child_.Usage(a), 1 * kGiB + 100);  // the parent's view plus the unreported 100
  Roster({ParentUser(a, 1 * kGiB + 3'000'000)});  // the hub applied the 3 MB
  EXPECT_EQ(child_.Usage(a), 1 * kGiB + 3'000'100);
  Collect();
  EXPECT_EQ(Reported(a), 3'000'100u);
}

TEST_F(UsageFollowerTest, AParentResetAndAnAdminEditReachTheChildCounter) {
  const std::string a = RandomUuid();
  Roster({ParentUser(a, 9 * kGiB)});
  child_.CallAddUsage(a, 777);
  User reset = ParentUser(a, 0);
  reset.set_last_reset_time(Today() + " 00:00:00");
  Roster({reset});
  EXPECT_EQ(child_.Usage(a), 777u);
  EXPECT_EQ(child_.Column(a, "last_reset_time"), Today());
  Collect();
  EXPECT_EQ(Reported(a), 777u);  // the reset does not look like one to collect

  User edited = reset;
  edited.set_current_usage_bytes(5 * kGiB);  // an admin sets the usage on the parent
  child_.CallAddUsage(a, 11);
  Roster({edited});
  EXPECT_EQ(child_.Usage(a), 5 * kGiB + 11);
  Collect();
  EXPECT_EQ(Reported(a), 788u);
}

TEST_F(UsageFollowerTest, ChildIsActiveFollowsTheParentsOverQuotaAndRenewal) {
  const std::string a = RandomUuid();
  Roster({ParentUser(a, 1 * kGiB, 2 * kGiB)});
  EXPECT_TRUE(child_.PanelIsActive(a));
  // The parent counted 8 GB against the 2 GB quota (other children).
  User over = ParentUser(a, 8 * kGiB, 2 * kGiB);
  ASSERT_FALSE(over.is_active());
  Roster({over});
  EXPECT_EQ(child_.Usage(a), 8 * kGiB);
  EXPECT_FALSE(child_.PanelIsActive(a));  // the child's own formula says inactive too
  // Daily reset on the parent: active again on both.
  User reset = ParentUser(a, 0, 2 * kGiB);
  reset.set_last_reset_time(Today() + " 00:00:00");
  ASSERT_TRUE(reset.is_active());
  child_.CallAddUsage(a, 42);
  Roster({reset});
  EXPECT_EQ(child_.Usage(a), 42u);
  EXPECT_TRUE(child_.PanelIsActive(a));
  Collect();
  EXPECT_EQ(Reported(a), 42u);
}

// The child's own reset job ran first (current_usage = 0, last_reset_time =
// today) and collect saw it; then the parent's reset arrives.
TEST_F(UsageFollowerTest, ChildResetsFirstCollectSawIt) {
  const std::string a = RandomUuid();
  Roster({ParentUser(a, 6 * kGiB)});
  child_.CallAddUsage(a, 1000);
  Collect();  // 1000 reported
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                           " SET current_usage = 0, last_reset_time = CURDATE() WHERE uuid = '", a,
                           "'"));
  child_.CallAddUsage(a, 20);
  Collect();  // the reset is seen: 20 reported
  EXPECT_EQ(Reported(a), 1020u);
  child_.CallAddUsage(a, 3);
  User reset = ParentUser(a, 1000);  // the parent reset, then the hub applied our 1000
  reset.set_last_reset_time(Today() + " 00:00:00");
  Roster({reset});
  EXPECT_EQ(child_.Usage(a), 1000u + 3);  // not yet: the 20 are still in flight
  Collect();
  EXPECT_EQ(Reported(a), 1023u);
}

// The child reset first and the roster arrives before collect saw it: once
// with the parent not reset yet (the roster puts the old last_reset_time back),
// once with the parent reset too (same date: only the lower counter shows it).
TEST_F(UsageFollowerTest, ChildResetsFirstRosterBeforeCollect) {
  const std::string a = RandomUuid(), b = RandomUuid();
  Roster({ParentUser(a, 6 * kGiB), ParentUser(b, 6 * kGiB)});
  child_.CallAddUsage(a, 1000);
  child_.CallAddUsage(b, 1000);
  Collect();
  for (const auto& u : {a, b}) {
    child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                             " SET current_usage = 0, last_reset_time = CURDATE() WHERE uuid = '",
                             u, "'"));
    child_.CallAddUsage(u, 20);
  }
  User not_reset = ParentUser(a, 6 * kGiB + 1000);  // parent has not reset yet
  User reset = ParentUser(b, 500);                   // parent reset (and 500 from elsewhere)
  reset.set_last_reset_time(Today() + " 00:00:00");
  Roster({not_reset, reset});
  EXPECT_EQ(child_.Usage(a), 6 * kGiB + 1000 + 20);
  EXPECT_EQ(child_.Usage(b), 500u + 20);
  Collect();
  EXPECT_EQ(Reported(a), 1020u);
  EXPECT_EQ(Reported(b), 1020u);
  // a: the parent resets later; the child's counter follows.
  User a_reset = ParentUser(a, 0);
  a_reset.set_last_reset_time(Today() + " 00:00:00");
  child_.CallAddUsage(a, 5);
  Roster({a_reset});
  EXPECT_EQ(child_.Usage(a), 5u);
  Collect();
  EXPECT_EQ(Reported(a), 1025u);
}

// The parent reset first: the copied last_reset_time = today keeps the
// child's own reset job from resetting (user_should_reset is false), and the
// child's counter is already the parent's.
TEST_F(UsageFollowerTest, ParentResetsFirst) {
  const std::string a = RandomUuid();
  Roster({ParentUser(a, 3 * kGiB)});
  child_.CallAddUsage(a, 64);
  User reset = ParentUser(a, 0);
  reset.set_last_reset_time(Today() + " 00:00:00");
  Roster({reset});
  EXPECT_EQ(child_.Column(a, "last_reset_time"), Today());
  EXPECT_EQ(child_.Usage(a), 64u);
  Collect();
  EXPECT_EQ(Reported(a), 64u);
}

TEST_F(UsageFollowerTest, OffsetsExactUnderConcurrentPanelAddsAndCollects) {
  constexpr int kUsers = 8;
  std::vector<std::string> uuids;
  std::vector<User> users;
  for (int i = 0; i < kUsers; ++i) {
    uuids.push_back(RandomUuid());
    users.push_back(ParentUser(uuids.back(), 0));
  }
  Roster(users);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> added{0};
  // The panel's usage task: atomic adds on connections of its own.
  std::vector<std::thread> panel;
  for (int t = 0; t < 2; ++t) {
    panel.emplace_back([&, t] {
      auto conn = MariaDbConnection::Connect(child_.Options());
      ASSERT_TRUE(conn.ok());
      uint64_t n = 0;
      while (!stop.load()) {
        const std::string& u = uuids[(n++ * 3 + t) % kUsers];
        const uint64_t bytes = 1000 + n % 977;
        auto r = (*conn)->Execute(absl::StrCat("UPDATE ", child_.UserTable(),
                                               " SET current_usage = current_usage + ", bytes,
                                               " WHERE uuid = '", u, "'"));
        ASSERT_TRUE(r.ok()) << r.status();
        added += bytes;
      }
    });
  }
  std::thread collect([&] {
    auto conn = MariaDbConnection::Connect(child_.Options());
    ASSERT_TRUE(conn.ok());
    while (!stop.load()) Collect(conn->get());
  });
  // Rosters with parent values that jump up and down (applies, resets, edits).
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < kUsers; ++i) {
      users[i].set_current_usage_bytes(static_cast<uint64_t>((round * 7919 + i * 104729) % 50000) *
                                       1000);
    }
    Roster(users);
  }
  stop = true;
  for (auto& t : panel) t.join();
  collect.join();
  Collect();
  Roster(users);  // nothing is unreported now: the counter is the parent's value
  uint64_t reported = 0;
  for (const auto& [uuid, bytes] : child_.OutboxBytes()) reported += bytes;
  EXPECT_EQ(reported, added.load());
  for (int i = 0; i < kUsers; ++i) {
    EXPECT_EQ(child_.Usage(uuids[i]), users[i].current_usage_bytes()) << i;
  }
}

TEST_F(UsageFollowerTest, RosterWaitsForARunningCollect) {
  const std::string a = RandomUuid();
  Roster({ParentUser(a, kGiB)});
  child_.CallAddUsage(a, 300);
  // A collect in progress holds the meta row.
  auto holder = MariaDbConnection::Connect(child_.Options());
  ASSERT_TRUE(holder.ok());
  Transaction tx(**holder);
  ASSERT_TRUE(store_.LockMeta(**holder).ok());
  std::atomic<bool> applied{false};
  std::thread roster([&] {
    auto conn = MariaDbConnection::Connect(child_.Options());
    ASSERT_TRUE(conn.ok());
    Roster({ParentUser(a, 2 * kGiB)}, conn->get());
    applied = true;
  });
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_FALSE(applied.load());
  EXPECT_EQ(child_.Usage(a), kGiB + 300);
  ASSERT_TRUE(tx.Commit().ok());
  roster.join();
  EXPECT_TRUE(applied.load());
  EXPECT_EQ(child_.Usage(a), 2 * kGiB + 300);
  Collect();
  EXPECT_EQ(Reported(a), 300u);
}

TEST_F(UsageFollowerTest, APanelWithoutAddUsageJsonIsLeftAlone) {
  child_.SetAtomicUsageProcedure(false);
  StatusBoard board;
  UsageFollower follower(&store_, child_.panel_db(), &board);
  applier_->set_usage_hook(&follower);
  const std::string a = RandomUuid();
  child_.InsertUser(a, 1234);
  Collect();
  Roster({ParentUser(a, 9 * kGiB)});
  EXPECT_FALSE(follower.following());
  EXPECT_EQ(child_.Usage(a), 1234u);  // untouched
  const auto status = board.Snapshot();
  EXPECT_EQ(status.usage_mode_effective(), "watermark");
  EXPECT_FALSE(status.panel_adds_usage_atomically());
  EXPECT_THAT(status.usage_mode_note(), ::testing::HasSubstr("add_usage_json"));
  // The panel is upgraded: the next check turns following on.
  child_.SetAtomicUsageProcedure(true);
  auto checked = follower.CheckPanel(child_.conn());
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(*checked);
  Roster({ParentUser(a, 9 * kGiB)});
  EXPECT_EQ(child_.Usage(a), 9 * kGiB);  // 1234 were reported already
  EXPECT_EQ(board.Snapshot().usage_mode_effective(), "follow");
  EXPECT_EQ(board.Snapshot().usage_follow_users_moved(), 1u);
}

TEST_F(UsageFollowerTest, NothingMovesWhileTheBaselineIsPending) {
  ChildDb child("ufb");
  child.SetAtomicUsageProcedure(true);
  StateStore store(child.state_db(), true);
  ASSERT_TRUE(store.EnsureSchema(child.conn()).ok());
  const std::string a = RandomUuid();
  child.InsertUser(a, 5000);
  UsageFollower follower(&store, child.panel_db(), nullptr);
  Transaction tx(child.conn());
  auto moved = follower.Follow(child.conn(), {{a, 7 * kGiB}});
  ASSERT_TRUE(moved.ok()) << moved.status();
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_EQ(moved->users_moved, 0u);
  EXPECT_EQ(child.Usage(a), 5000u);
}

}  // namespace
}  // namespace hsync::reporter
