// The api-mode pacing parts, without I/O: the PATCH budget (never more than
// its minute and its 10 s slice, in any window), the per-user rate tracker,
// the urgency ranking by time to quota, the scheduler handing out the budget
// most-urgent first, and the list pacer (slow list -> longer interval, back
// again when it is fast).
#include <gtest/gtest.h>

#include <deque>

#include "absl/random/random.h"
#include "hub/apply/apply_scheduler.h"
#include "hub/apply/patch_budget.h"
#include "hub/apply/urgency_ranker.h"
#include "hub/apply/usage_rate_tracker.h"
#include "hub/roster/list_pacer.h"
#include "tests/hub/journal_test_helpers.h"

namespace hsync::hub {
namespace {

using testing::TestUuid;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

PendingUser Pending(uint64_t n, uint64_t bytes, absl::Time first) {
  PendingUser p;
  p.uuid = TestUuid(n);
  p.bytes = bytes;
  p.first_pending_at = first;
  return p;
}

hiddify_sync::v1::User View(uint64_t limit, uint64_t current) {
  hiddify_sync::v1::User u;
  u.set_usage_limit_bytes(limit);
  u.set_current_usage_bytes(current);
  return u;
}

// Counts the takes in every window [t, t + length) over the whole history.
size_t MaxInAnyWindow(const std::vector<absl::Time>& takes, absl::Duration length) {
  size_t best = 0;
  size_t begin = 0;
  for (size_t end = 0; end < takes.size(); ++end) {
    while (takes[end] - takes[begin] >= length) ++begin;
    best = std::max(best, end - begin + 1);
  }
  return best;
}

TEST(PatchBudgetTest, NeverMoreThanTheMinuteOrTheSliceInAnyWindow) {
  for (uint32_t per_minute : {1u, 7u, 60u, 120u, 1000u}) {
    PatchBudget budget(per_minute);
    absl::BitGen gen;
    std::vector<absl::Time> takes;
    absl::Time now = kStart;
    // Ten minutes of attempts at random moments, often in bursts.
    while (now < kStart + absl::Minutes(10)) {
      const int burst = absl::Uniform(gen, 1, 50);
      for (int i = 0; i < burst; ++i) {
        if (budget.TryTake(now)) takes.push_back(now);
      }
      now += absl::Milliseconds(absl::Uniform(gen, 0, 1000));
    }
    const size_t per_slice = (per_minute + 5) / 6;
    EXPECT_LE(MaxInAnyWindow(takes, absl::Seconds(60)), per_minute) << per_minute;
    EXPECT_LE(MaxInAnyWindow(takes, absl::Seconds(10)), per_slice) << per_minute;
    // The budget is used, not just withheld: close to per_minute x 10 minutes.
    EXPECT_GE(takes.size(), per_minute * 9) << per_minute;
  }
}

TEST(PatchBudgetTest, AvailableAndRefill) {
  PatchBudget budget(12);  // 2 per 10 s
  EXPECT_EQ(budget.Available(kStart), 2u);
  EXPECT_TRUE(budget.TryTake(kStart));
  EXPECT_TRUE(budget.TryTake(kStart + absl::Seconds(1)));
  EXPECT_FALSE(budget.TryTake(kStart + absl::Seconds(2)));
  EXPECT_EQ(budget.Available(kStart + absl::Seconds(9)), 0u);
  EXPECT_EQ(budget.Available(kStart + absl::Seconds(10)), 1u);  // the first left the slice
  EXPECT_EQ(budget.TakenLastMinute(kStart + absl::Seconds(30)), 2u);
  EXPECT_EQ(budget.TakenLastMinute(kStart + absl::Seconds(61)), 0u);
}

TEST(PatchBudgetTest, ZeroIsUnlimitedButCounted) {
  PatchBudget budget(0);
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(budget.TryTake(kStart));
  EXPECT_EQ(budget.TakenLastMinute(kStart + absl::Seconds(1)), 5000u);
}

TEST(UsageRateTrackerTest, LearnsTheRateAcrossAppliesAndForgets) {
  UsageRateTracker tracker(absl::Seconds(10));
  const std::string user = TestUuid(1);
  // 1 MB/s for a minute, applied every 5 s.
  uint64_t pending = 0;
  absl::Time now = kStart;
  for (int s = 1; s <= 60; ++s) {
    now = kStart + absl::Seconds(s);
    pending += 1'000'000;
    tracker.Observe({Pending(1, pending, kStart)}, now);
    if (s % 5 == 0) {
      tracker.NoteApplied(user, pending);
      pending = 0;
    }
  }
  EXPECT_NEAR(tracker.BytesPerSecond(user), 1e6, 5e4);
  EXPECT_EQ(tracker.BytesPerSecond(TestUuid(2)), 0.0);
  // No more traffic: decays, then is forgotten.
  tracker.Observe({}, now + absl::Seconds(10));
  EXPECT_LT(tracker.BytesPerSecond(user), 0.4e6);
  tracker.Observe({}, now + absl::Seconds(200));
  EXPECT_EQ(tracker.tracked_users(), 0u);
}

TEST(UrgencyRankerTest, TimeToQuotaFromRateAndRemaining) {
  const UrgencyRule rule{100, absl::Seconds(60)};
  PendingUser p = Pending(1, 400, kStart);
  // 1000 limit, 500 used, 400 pending, margin 100: exactly there.
  UserUrgency u = RankUrgency(p, View(1000, 500), 0, rule);
  EXPECT_TRUE(u.urgent);
  EXPECT_EQ(u.time_to_quota, absl::ZeroDuration());
  // 1,000,000 left at 10,000 B/s = 100 s: not within 60 s.
  p.bytes = 0;
  u = RankUrgency(p, View(1'000'100 + 500, 500), 10'000, rule);
  EXPECT_FALSE(u.urgent);
  EXPECT_EQ(u.time_to_quota, absl::Seconds(100));
  // At 20,000 B/s = 50 s: urgent, although far from the byte margin.
  u = RankUrgency(p, View(1'000'100 + 500, 500), 20'000, rule);
  EXPECT_TRUE(u.urgent);
  EXPECT_EQ(u.time_to_quota, absl::Seconds(50));
  // No rate, or unknown to the roster: never urgent by time.
  EXPECT_EQ(RankUrgency(p, View(1'000'600, 500), 0, rule).time_to_quota,
            absl::InfiniteDuration());
  EXPECT_FALSE(RankUrgency(p, std::nullopt, 1e12, rule).urgent);
  // No overflow at the extremes.
  EXPECT_FALSE(RankUrgency(p, View(UINT64_MAX, 0), 1, rule).urgent);
}

TEST(ApplySchedulerTest, OrderIsClosestToQuotaFirstThenOldest) {
  const std::vector<PendingUser> pending = {
      Pending(1, 10, kStart - absl::Seconds(300)),  // oldest, not urgent
      Pending(2, 10, kStart - absl::Seconds(5)),    // urgent by rate: 30 s to quota
      Pending(3, 10, kStart - absl::Seconds(200)),  // old, not urgent
      Pending(4, 10, kStart - absl::Seconds(5)),    // over quota: 0 s
      Pending(5, 10, kStart - absl::Seconds(5)),    // urgent by rate: 10 s
  };
  auto lookup = [](const std::string& uuid) -> std::optional<hiddify_sync::v1::User> {
    if (uuid == TestUuid(4)) return View(1000, 995);
    if (uuid == TestUuid(2)) return View(30'010, 0);
    if (uuid == TestUuid(5)) return View(10'010, 0);
    return View(1ull << 40, 0);
  };
  auto rate = [](const std::string&) { return 1000.0; };
  ApplySchedule schedule{absl::Seconds(60), 0, 0, absl::Seconds(60)};
  const auto due = SelectDueUsers(pending, kStart, schedule, lookup, nullptr, rate);
  std::vector<std::string> order;
  for (const DueUser& d : due) order.push_back(d.pending.uuid);
  EXPECT_EQ(order, (std::vector<std::string>{TestUuid(4), TestUuid(5), TestUuid(2), TestUuid(1),
                                             TestUuid(3)}));
}

TEST(ApplySchedulerTest, TightBudgetGoesToTheUserAboutToCrossItsQuota) {
  // 30 users, all due (old bytes); one is about to cross its quota. With 2
  // writes per 10 s, that one is among the first written, the budget holds.
  ApplyScheduler scheduler(ApplySchedule{absl::Seconds(60), 1000, 0, absl::Seconds(120)},
                           std::make_unique<PatchBudget>(12));
  std::vector<PendingUser> pending;
  for (int i = 1; i <= 30; ++i) pending.push_back(Pending(i, 5000, kStart - absl::Minutes(10)));
  const std::string crossing = TestUuid(17);
  auto lookup = [&](const std::string& uuid) -> std::optional<hiddify_sync::v1::User> {
    return uuid == crossing ? View(1'000'000, 994'500) : View(1ull << 40, 0);
  };
  const auto due = scheduler.Plan(pending, kStart, lookup, nullptr);
  ASSERT_EQ(due.size(), 30u);
  EXPECT_EQ(due[0].pending.uuid, crossing);
  EXPECT_TRUE(due[0].urgent);
  size_t written = 0;
  for (size_t i = 0; i < due.size(); ++i) {
    if (!scheduler.TakeWrite(kStart, due.size() - i)) break;
    ++written;
  }
  EXPECT_EQ(written, 2u);
  const ApplySchedulerStats stats = scheduler.Stats(kStart);
  EXPECT_EQ(stats.writes_per_minute_budget, 12u);
  EXPECT_EQ(stats.writes_last_minute, 2u);
  EXPECT_EQ(stats.urgent_due, 1u);
  EXPECT_EQ(stats.deferred_by_budget, 28u);
}

TEST(ListPacerTest, SlowListStretchesTheIntervalAndItComesBack) {
  ListPacer pacer(ListPacing{absl::Seconds(30), 0.1, absl::Minutes(30)});
  EXPECT_EQ(pacer.Interval(), absl::Seconds(30));
  pacer.Record(absl::Milliseconds(900));  // 1,000 users: 9 s < 30 s
  EXPECT_EQ(pacer.Interval(), absl::Seconds(30));
  pacer.Record(absl::Milliseconds(5300));  // 10,000 users
  EXPECT_NEAR(absl::ToDoubleSeconds(pacer.Interval()), 53, 0.001);
  pacer.Record(absl::Seconds(600));  // a stuck panel: capped
  EXPECT_EQ(pacer.Interval(), absl::Minutes(30));
  // Fast again: halves toward it (the stuck read counts as no more than the
  // cap), then the configured interval.
  pacer.Record(absl::Milliseconds(100));
  EXPECT_NEAR(absl::ToDoubleMinutes(pacer.Interval()), 15, 0.01);
  int polls = 1;
  while (pacer.Interval() > absl::Seconds(30)) {
    pacer.Record(absl::Milliseconds(100));
    ++polls;
  }
  EXPECT_LE(polls, 12);
  EXPECT_EQ(pacer.Interval(), absl::Seconds(30));
  // Share 0: never stretched.
  ListPacer off(ListPacing{absl::Seconds(30), 0, absl::Minutes(30)});
  off.Record(absl::Seconds(100));
  EXPECT_EQ(off.Interval(), absl::Seconds(30));
}

}  // namespace
}  // namespace hsync::hub
