// The api-mode pacing parts, without I/O: the PATCH budget (never more than
// its minute and its 10 s slice, in any window), the per-user rate tracker,
// the urgency ranking by time to quota, the scheduler handing out the budget
// most-urgent first, and the list pacer (slow list -> longer interval, back
// again when it is fast).
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "absl/random/random.h"
#include "hub/apply/apply_scheduler.h"
#include "hub/apply/patch_budget.h"
#include "hub/apply/pending_index.h"
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
  PendingIndex index;
  const PendingIndexUpdate update = index.ReplaceAll(pending);
  const auto due = scheduler.Plan(index, update, kStart, lookup, nullptr);
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

// The same traffic through two planners: the scheduler on the pending index
// (handed only the users that changed) and SelectDueUsers over every pending
// user with a rate tracker that looks at everyone every cycle (what each
// cycle did before issue 13). Roster views stay fixed here (a view that
// moves without new bytes is only caught by the periodic re-judging:
// PendingIndexTest.PlanPutsUrgentUsersFirstAndTheOldDueOnesByAge).
TEST(ApplySchedulerTest, PlanOnTheIndexMatchesRankingEveryUserEveryCycle) {
  std::mt19937_64 gen(13);
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(gen);
  };
  const ApplySchedule schedule{absl::Seconds(20), 50'000, 25, absl::Seconds(120)};
  ApplyScheduler scheduler(schedule, nullptr);
  UsageRateTracker reference;
  constexpr int kUsers = 200;
  std::map<std::string, hiddify_sync::v1::User> views;
  for (int n = 1; n <= kUsers; ++n) {
    const uint64_t limit = uniform(1'000'000, 100'000'000);
    views[TestUuid(n)] = View(limit, uniform(0, limit));
  }
  auto lookup = [&](const std::string& uuid) -> std::optional<hiddify_sync::v1::User> {
    if (uuid == TestUuid(7)) return std::nullopt;  // unknown to the roster
    return views.at(uuid);
  };
  std::map<std::string, PendingUser> pending;  // the journal's rows
  std::set<std::string> changed;
  PendingIndex index;
  size_t urgent_seen = 0, due_seen = 0;
  for (int cycle = 0; cycle < 600; ++cycle) {
    const absl::Time now = kStart + absl::Seconds(cycle);
    for (uint64_t k = uniform(0, 20); k > 0; --k) {
      const std::string uuid = TestUuid(uniform(1, kUsers));
      auto [it, inserted] = pending.try_emplace(uuid, Pending(0, 0, now));
      it->second.uuid = uuid;
      it->second.bytes += uniform(1, 300'000);
      changed.insert(uuid);
    }
    std::vector<PendingUser> all;
    for (const auto& [uuid, p] : pending) all.push_back(p);
    std::sort(all.begin(), all.end(), [](const PendingUser& a, const PendingUser& b) {
      return std::tie(a.first_pending_at, a.uuid) < std::tie(b.first_pending_at, b.uuid);
    });
    auto skip = [&](const std::string& uuid) { return cycle % 2 == 0 && uuid < TestUuid(20); };

    PendingIndexUpdate update;
    if (cycle == 0) {
      update = index.ReplaceAll(all);
    } else {
      std::vector<std::string> uuids(changed.begin(), changed.end());
      std::vector<PendingUser> rows;
      for (const std::string& uuid : uuids) {
        if (pending.count(uuid) > 0) rows.push_back(pending.at(uuid));
      }
      update = index.ReplaceSome(uuids, rows);
    }
    changed.clear();
    const std::vector<DueUser> planned = scheduler.Plan(index, update, now, lookup, skip);

    reference.Observe(all, now);
    const std::vector<DueUser> expected = SelectDueUsers(
        all, now, schedule, lookup, skip,
        [&](const std::string& uuid) { return reference.BytesPerSecond(uuid); });

    ASSERT_EQ(planned.size(), expected.size()) << "cycle " << cycle;
    for (size_t i = 0; i < planned.size(); ++i) {
      ASSERT_EQ(planned[i].pending.uuid, expected[i].pending.uuid) << "cycle " << cycle << " #" << i;
      ASSERT_EQ(planned[i].pending.bytes, expected[i].pending.bytes);
      ASSERT_EQ(planned[i].urgent, expected[i].urgent);
      urgent_seen += planned[i].urgent ? 1 : 0;
    }
    due_seen += planned.size();
    // The first few due users are applied: all their bytes, or half (the
    // rest dated from now, as after an intent).
    for (size_t i = 0; i < std::min<size_t>(planned.size(), 4); ++i) {
      const std::string& uuid = planned[i].pending.uuid;
      PendingUser& p = pending.at(uuid);
      const uint64_t bytes = uniform(0, 1) == 0 ? p.bytes : (p.bytes + 1) / 2;
      scheduler.NoteApplied(uuid, bytes);
      reference.NoteApplied(uuid, bytes);
      p.bytes -= bytes;
      p.first_pending_at = now;
      if (p.bytes == 0) pending.erase(uuid);
      changed.insert(uuid);
    }
  }
  // The traffic exercised both kinds of due users.
  EXPECT_GT(urgent_seen, 100u);
  EXPECT_GT(due_seen - urgent_seen, 100u);
}

}  // namespace
}  // namespace hsync::hub
