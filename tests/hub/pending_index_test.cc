// PendingIndex (the applier's view of the journal's pending users, issue 13)
// on a real journal, and the applier's per-cycle journal reads: bounded by the
// users that changed, not by all pending users.
#include "hub/apply/pending_index.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "hub/apply/applier.h"
#include "hub/apply/apply_scheduler.h"
#include "hub/journal/journal.h"
#include "tests/hub/journal_only_writer.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using testing::Delta;
using testing::JournalOnlyWriter;
using testing::MakeReport;
using testing::TestUuid;

hiddify_sync::v1::User View(uint64_t limit, uint64_t usage) {
  hiddify_sync::v1::User u;
  u.set_usage_limit_bytes(limit);
  u.set_current_usage_bytes(usage);
  return u;
}

class PendingIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hsync::testing::MakeTempDir("pending_index");
    auto journal = Journal::Open(dir_ + "/journal.sqlite");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
  }

  void Accept(const std::vector<Delta>& deltas) {
    auto r = journal_->Accept(MakeReport("node-a", 1, ++seq_, deltas));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  void Apply(const std::string& uuid, uint64_t bytes) {
    ASSERT_TRUE(journal_->RecordIntent({uuid, 0, bytes, bytes, absl::Time()}).ok());
    ASSERT_TRUE(journal_->CompleteIntent(uuid, bytes).ok());
  }

  PendingIndexUpdate MustRefresh(PendingIndex& index, absl::Time now) {
    auto update = index.Refresh(*journal_, now);
    EXPECT_TRUE(update.ok()) << update.status();
    return update.ok() ? *std::move(update) : PendingIndexUpdate{};
  }

  static std::vector<std::string> Uuids(const std::vector<PendingUser>& users) {
    std::vector<std::string> out;
    for (const PendingUser& u : users) out.push_back(u.uuid);
    std::sort(out.begin(), out.end());
    return out;
  }

  static std::vector<std::string> OldestFirst(const PendingIndex& index) {
    std::vector<std::string> out;
    index.ForEachOldestFirst([&](const PendingUser& p) {
      out.push_back(p.uuid);
      return true;
    });
    return out;
  }

  std::string dir_;
  std::unique_ptr<Journal> journal_;
  uint64_t seq_ = 0;
  const absl::Time t0_ = absl::Now();
};

TEST_F(PendingIndexTest, FirstRefreshReadsEverythingThenOnlyTheChangedUsers) {
  Accept({{TestUuid(1), 100}, {TestUuid(2), 200}, {TestUuid(3), 300}});
  PendingIndex index;
  PendingIndexUpdate first = MustRefresh(index, t0_);
  EXPECT_TRUE(first.full);
  EXPECT_EQ(first.rows_read, 3u);
  EXPECT_EQ(index.size(), 3u);

  // Nothing changed: nothing read.
  PendingIndexUpdate idle = MustRefresh(index, t0_ + absl::Seconds(1));
  EXPECT_FALSE(idle.full);
  EXPECT_EQ(idle.rows_read, 0u);
  EXPECT_TRUE(idle.changed.empty());

  // New bytes for one known user and one new user: exactly those two read.
  Accept({{TestUuid(2), 5}, {TestUuid(4), 40}});
  PendingIndexUpdate some = MustRefresh(index, t0_ + absl::Seconds(2));
  EXPECT_FALSE(some.full);
  EXPECT_EQ(some.rows_read, 2u);
  EXPECT_EQ(Uuids(some.changed), (std::vector<std::string>{TestUuid(2), TestUuid(4)}));
  ASSERT_NE(index.Find(TestUuid(2)), nullptr);
  EXPECT_EQ(index.Find(TestUuid(2))->bytes, 205u);
  ASSERT_NE(index.Find(TestUuid(4)), nullptr);
  EXPECT_EQ(index.Find(TestUuid(4))->bytes, 40u);
  EXPECT_EQ(index.size(), 4u);
  // A zero-byte usage creates no row and is not a change.
  Accept({{TestUuid(9), 0}});
  EXPECT_EQ(MustRefresh(index, t0_ + absl::Seconds(3)).rows_read, 0u);
}

TEST_F(PendingIndexTest, AppliedUsersLeavePartlyAppliedOnesKeepTheRest) {
  Accept({{TestUuid(1), 100}, {TestUuid(2), 200}});
  PendingIndex index;
  MustRefresh(index, t0_);
  Apply(TestUuid(1), 100);
  Apply(TestUuid(2), 150);
  PendingIndexUpdate update = MustRefresh(index, t0_ + absl::Seconds(1));
  EXPECT_EQ(update.rows_read, 2u);
  EXPECT_EQ(index.Find(TestUuid(1)), nullptr);
  ASSERT_NE(index.Find(TestUuid(2)), nullptr);
  EXPECT_EQ(index.Find(TestUuid(2))->bytes, 50u);
  bool saw_left = false;
  for (const PendingUser& p : update.changed) {
    if (p.uuid == TestUuid(1)) saw_left = p.bytes == 0;
  }
  EXPECT_TRUE(saw_left);
  EXPECT_EQ(OldestFirst(index), (std::vector<std::string>{TestUuid(2)}));
}

TEST_F(PendingIndexTest, EveryWriteOfAPendingRowIsNoticed) {
  Accept({{TestUuid(1), 100}, {TestUuid(2), 100}, {TestUuid(3), 100}});
  PendingIndex index;
  MustRefresh(index, t0_);
  auto batch = journal_->RecordBatch({{TestUuid(1), 60}});  // database writer
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_TRUE(journal_->CompleteBatch(batch->id, {}).ok());
  ASSERT_TRUE(journal_->MarkOrphaned(TestUuid(2), 100).ok());
  Apply(TestUuid(3), 30);  // api writer: intent
  // Recording or abandoning a write changes no pending row.
  ASSERT_TRUE(journal_->RecordIntent({TestUuid(3), 0, 1, 1, absl::Time()}).ok());
  ASSERT_TRUE(journal_->AbandonIntent(TestUuid(3)).ok());
  PendingIndexUpdate update = MustRefresh(index, t0_ + absl::Seconds(1));
  EXPECT_EQ(update.rows_read, 3u);
  EXPECT_EQ(Uuids(update.changed),
            (std::vector<std::string>{TestUuid(1), TestUuid(2), TestUuid(3)}));
  ASSERT_NE(index.Find(TestUuid(1)), nullptr);
  EXPECT_EQ(index.Find(TestUuid(1))->bytes, 40u);
  EXPECT_EQ(index.Find(TestUuid(2)), nullptr);
  ASSERT_NE(index.Find(TestUuid(3)), nullptr);
  EXPECT_EQ(index.Find(TestUuid(3))->bytes, 70u);
  EXPECT_EQ(MustRefresh(index, t0_ + absl::Seconds(2)).rows_read, 0u);
}

TEST_F(PendingIndexTest, OldestFirstFollowsTheJournalsAge) {
  Accept({{TestUuid(3), 1}});
  absl::SleepFor(absl::Milliseconds(2));
  Accept({{TestUuid(1), 1}});
  absl::SleepFor(absl::Milliseconds(2));
  Accept({{TestUuid(2), 1}});
  PendingIndex index;
  MustRefresh(index, t0_);
  EXPECT_EQ(OldestFirst(index), (std::vector<std::string>{TestUuid(3), TestUuid(1), TestUuid(2)}));
  // User 3 fully applied, then new bytes: now the youngest.
  Apply(TestUuid(3), 1);
  absl::SleepFor(absl::Milliseconds(2));
  Accept({{TestUuid(3), 7}});
  MustRefresh(index, t0_ + absl::Seconds(1));
  EXPECT_EQ(OldestFirst(index), (std::vector<std::string>{TestUuid(1), TestUuid(2), TestUuid(3)}));
  // The index agrees with a full read of the journal.
  auto all = journal_->PendingUsers();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> journal_order;
  for (const PendingUser& p : *all) journal_order.push_back(p.uuid);
  EXPECT_EQ(OldestFirst(index), journal_order);
}

TEST_F(PendingIndexTest, PeriodicFullReadFindsAUserWhoseNoticeWasLost) {
  PendingIndex index(absl::Minutes(5));
  MustRefresh(index, t0_);
  Accept({{TestUuid(1), 100}});
  (void)journal_->TakeChangedPendingUsers();  // the notice is lost
  EXPECT_EQ(MustRefresh(index, t0_ + absl::Seconds(1)).rows_read, 0u);
  EXPECT_EQ(index.Find(TestUuid(1)), nullptr);
  EXPECT_FALSE(MustRefresh(index, t0_ + absl::Minutes(4)).full);
  PendingIndexUpdate full = MustRefresh(index, t0_ + absl::Minutes(5));
  EXPECT_TRUE(full.full);
  ASSERT_NE(index.Find(TestUuid(1)), nullptr);
  EXPECT_EQ(index.Find(TestUuid(1))->bytes, 100u);
}

TEST_F(PendingIndexTest, PlanPutsUrgentUsersFirstAndTheOldDueOnesByAge) {
  // Users 1-3 came first; user 4 is new but its bytes take it over its quota.
  Accept({{TestUuid(1), 10}, {TestUuid(2), 10}, {TestUuid(3), 10}});
  absl::SleepFor(absl::Milliseconds(2));
  Accept({{TestUuid(4), 10}});
  auto all = journal_->PendingUsers();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->back().uuid, TestUuid(4));
  const absl::Time now = all->back().first_pending_at + absl::Seconds(1);
  ApplyScheduler scheduler(ApplySchedule{absl::Seconds(10), 0, 3, absl::ZeroDuration()},
                           nullptr);
  std::set<std::string> near_quota = {TestUuid(4)};
  auto lookup = [&](const std::string& uuid) -> std::optional<hiddify_sync::v1::User> {
    return near_quota.count(uuid) > 0 ? View(100, 95) : View(1ull << 40, 0);
  };
  PendingIndex index;
  auto update = index.Refresh(*journal_, now);
  ASSERT_TRUE(update.ok());
  // None waited 10 s: only the urgent one is due.
  auto due = scheduler.Plan(index, *update, now, lookup, nullptr);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].pending.uuid, TestUuid(4));
  EXPECT_TRUE(due[0].urgent);
  EXPECT_EQ(scheduler.Stats(now).ranked_last_plan, 4u);  // after a full read: everyone

  // 10 s on, all due: urgent first, then by age, at most 3 (2 is skipped).
  auto none = index.Refresh(*journal_, now + absl::Seconds(10));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->rows_read, 0u);
  due = scheduler.Plan(index, *none, now + absl::Seconds(10), lookup,
                       [](const std::string& uuid) { return uuid == TestUuid(2); });
  std::vector<std::string> order;
  for (const DueUser& d : due) order.push_back(d.pending.uuid);
  EXPECT_EQ(order, (std::vector<std::string>{TestUuid(4), TestUuid(1), TestUuid(3)}));
  // Nothing changed: only the urgent user was judged again.
  EXPECT_EQ(scheduler.Stats(now).ranked_last_plan, 1u);
  // New bytes for the urgent user: read, and judged once (changed and urgent).
  Accept({{TestUuid(4), 1}});
  auto more = index.Refresh(*journal_, now + absl::Seconds(10));
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(more->rows_read, 1u);
  due = scheduler.Plan(index, *more, now + absl::Seconds(10), lookup, nullptr);
  EXPECT_EQ(scheduler.Stats(now).ranked_last_plan, 1u);
  ASSERT_FALSE(due.empty());
  EXPECT_EQ(due[0].pending.bytes, 11u);

  // User 1's roster view moves to its quota without new bytes: there is no
  // notice of that; the periodic re-judging of everyone finds it.
  near_quota.insert(TestUuid(1));
  due = scheduler.Plan(index, PendingIndexUpdate{}, now + absl::Seconds(11), lookup, nullptr);
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(due[1].pending.uuid, TestUuid(1));
  EXPECT_FALSE(due[1].urgent);
  due = scheduler.Plan(index, PendingIndexUpdate{},
                       now + absl::Seconds(11) + ApplyScheduler::kRankAllInterval, lookup,
                       nullptr);
  order.clear();
  for (const DueUser& d : due) order.push_back(d.pending.uuid);
  // Both at their quota (0 s left): the older first.
  EXPECT_EQ(order, (std::vector<std::string>{TestUuid(1), TestUuid(4), TestUuid(2)}));
  EXPECT_TRUE(due[0].urgent);
  EXPECT_TRUE(due[1].urgent);
  EXPECT_EQ(scheduler.Stats(now).ranked_last_plan, 4u);
}

// With 100,000 users pending and none due, a cycle reads no pending row;
// after 10 users get new bytes, it reads those 10. Applied users leave.
TEST_F(PendingIndexTest, ApplierCycleReadsOnlyTheChangedUsers) {
  constexpr int kUsers = 100'000;
  constexpr int kPerReport = 10'000;
  for (int r = 0; r < kUsers / kPerReport; ++r) {
    std::vector<Delta> deltas;
    for (int i = 0; i < kPerReport; ++i) deltas.push_back({TestUuid(r * kPerReport + i + 1), 1000});
    Accept(deltas);
  }
  std::vector<std::string> written;
  ApplierOptions options;
  options.max_apply_delay = absl::Minutes(10);
  options.max_users_per_cycle = 1000;
  ApplierHooks hooks;
  hooks.lookup_user = [](const std::string&) -> std::optional<hiddify_sync::v1::User> {
    return View(1ull << 40, 0);
  };
  Applier applier(journal_.get(), std::make_unique<JournalOnlyWriter>(journal_.get(), &written),
                  hooks, options);
  absl::Time now = absl::Now();
  absl::Time start = absl::Now();
  ASSERT_TRUE(applier.RunOneCycle(now).ok());
  const absl::Duration first = absl::Now() - start;
  EXPECT_EQ(applier.Stats().pending_rows_read_last_cycle, static_cast<uint64_t>(kUsers));
  EXPECT_EQ(applier.Stats().pending_users_indexed, static_cast<uint64_t>(kUsers));

  start = absl::Now();
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Seconds(1)).ok());
  const absl::Duration idle = absl::Now() - start;
  EXPECT_EQ(applier.Stats().pending_rows_read_last_cycle, 0u);

  std::vector<Delta> ten;
  for (int i = 1; i <= 10; ++i) ten.push_back({TestUuid(i * 777), 5});
  Accept(ten);
  start = absl::Now();
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Seconds(2)).ok());
  const absl::Duration changed = absl::Now() - start;
  EXPECT_EQ(applier.Stats().pending_rows_read_last_cycle, 10u);
  EXPECT_TRUE(written.empty());  // none due
  std::printf("cycle with %d pending users: first (full read) %s, idle %s, 10 changed %s\n",
              kUsers, absl::FormatDuration(first).c_str(), absl::FormatDuration(idle).c_str(),
              absl::FormatDuration(changed).c_str());

  // 10 minutes on: due, the oldest 1000 applied; the next cycle reads those
  // 1000 (they left) and applies the next 1000, never one twice.
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Minutes(11)).ok());
  EXPECT_EQ(written.size(), 1000u);
  ASSERT_TRUE(applier.RunOneCycle(now + absl::Minutes(11) + absl::Seconds(1)).ok());
  EXPECT_EQ(applier.Stats().pending_rows_read_last_cycle, 1000u);
  EXPECT_EQ(applier.Stats().pending_users_indexed, static_cast<uint64_t>(kUsers - 1000));
  EXPECT_EQ(written.size(), 2000u);
  EXPECT_EQ(std::set<std::string>(written.begin(), written.end()).size(), written.size());
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pending_users, static_cast<uint64_t>(kUsers - 2000));
}

}  // namespace
}  // namespace hsync::hub
