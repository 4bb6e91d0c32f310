// Due/urgent selection, backoff arithmetic and the intent verdict (no I/O).
#include <gtest/gtest.h>

#include "hub/apply/applier_user_step.h"
#include "hub/apply/apply_scheduler.h"
#include "hub/util/backoff.h"
#include "tests/hub/journal_test_helpers.h"

namespace hsync::hub {
namespace {

using testing::TestUuid;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

PendingUser Pending(uint64_t n, uint64_t bytes, absl::Duration age) {
  PendingUser p;
  p.uuid = TestUuid(n);
  p.bytes = bytes;
  p.first_pending_at = kNow - age;
  return p;
}

hiddify_sync::v1::User View(uint64_t limit, uint64_t current) {
  hiddify_sync::v1::User u;
  u.set_usage_limit_bytes(limit);
  u.set_current_usage_bytes(current);
  return u;
}

std::vector<std::string> Uuids(const std::vector<DueUser>& due) {
  std::vector<std::string> out;
  for (const DueUser& d : due) out.push_back(d.pending.uuid);
  return out;
}

TEST(ApplySchedulerTest, UrgentWhenPendingReachesQuotaMinusMargin) {
  EXPECT_FALSE(IsUrgent(Pending(1, 10, {}), View(1000, 500), 100));
  EXPECT_TRUE(IsUrgent(Pending(1, 400, {}), View(1000, 500), 100));   // 900 >= 900
  EXPECT_FALSE(IsUrgent(Pending(1, 399, {}), View(1000, 500), 100));
  EXPECT_TRUE(IsUrgent(Pending(1, 1, {}), View(1000, 2000), 100));    // already over
  EXPECT_TRUE(IsUrgent(Pending(1, 1, {}), View(50, 0), 100));         // margin above quota
  EXPECT_FALSE(IsUrgent(Pending(1, 1, {}), View(UINT64_MAX, 0), 0));  // no overflow
  EXPECT_TRUE(IsUrgent(Pending(1, UINT64_MAX, {}), View(UINT64_MAX, 5), 0));
}

TEST(ApplySchedulerTest, DueWhenOldEnoughOrUrgentUrgentFirst) {
  const std::vector<PendingUser> pending = {
      Pending(1, 10, absl::Seconds(90)),   // old, not urgent
      Pending(2, 10, absl::Seconds(10)),   // young, not urgent
      Pending(3, 10, absl::Seconds(70)),   // old
      Pending(4, 900, absl::Seconds(5)),   // young but urgent
      Pending(5, 900, absl::Seconds(5)),   // young, unknown to the roster
  };
  auto lookup = [](const std::string& uuid) -> std::optional<hiddify_sync::v1::User> {
    if (uuid == TestUuid(5)) return std::nullopt;
    return View(1000, 50);
  };
  ApplySchedule schedule{absl::Seconds(60), 100, 0};  // 50 + 900 >= 1000 - 100
  auto due = SelectDueUsers(pending, kNow, schedule, lookup, nullptr);
  EXPECT_EQ(Uuids(due), (std::vector<std::string>{TestUuid(4), TestUuid(1), TestUuid(3)}));
  EXPECT_TRUE(due[0].urgent);
  EXPECT_FALSE(due[1].urgent);
}

TEST(ApplySchedulerTest, UnknownRosterUserIsDueAfterTheDelayOnly) {
  const std::vector<PendingUser> pending = {Pending(1, 1ull << 40, absl::Seconds(59))};
  ApplySchedule schedule{absl::Seconds(60), 0, 0};
  EXPECT_TRUE(SelectDueUsers(pending, kNow, schedule, nullptr, nullptr).empty());
  EXPECT_EQ(SelectDueUsers(pending, kNow + absl::Seconds(1), schedule, nullptr, nullptr).size(),
            1u);
}

TEST(ApplySchedulerTest, SkippedUsersAndPerCycleLimit) {
  std::vector<PendingUser> pending;
  for (int i = 1; i <= 10; ++i) pending.push_back(Pending(i, 1, absl::Seconds(100 - i)));
  ApplySchedule schedule{absl::Seconds(60), 0, 3};
  auto due = SelectDueUsers(pending, kNow, schedule, nullptr,
                            [](const std::string& uuid) { return uuid == TestUuid(2); });
  EXPECT_EQ(Uuids(due), (std::vector<std::string>{TestUuid(1), TestUuid(3), TestUuid(4)}));
}

TEST(BackoffTest, DoublesUpToTheMaximumAndResets) {
  Backoff b(absl::Seconds(1), absl::Seconds(10));
  EXPECT_TRUE(b.Ready(kNow));
  EXPECT_EQ(b.RecordFailure(kNow), kNow + absl::Seconds(1));
  EXPECT_FALSE(b.Ready(kNow));
  EXPECT_TRUE(b.Ready(kNow + absl::Seconds(1)));
  EXPECT_EQ(b.RecordFailure(kNow), kNow + absl::Seconds(2));
  EXPECT_EQ(b.RecordFailure(kNow), kNow + absl::Seconds(4));
  EXPECT_EQ(b.RecordFailure(kNow), kNow + absl::Seconds(8));
  EXPECT_EQ(b.RecordFailure(kNow), kNow + absl::Seconds(10));
  EXPECT_EQ(b.RecordFailure(kNow), kNow + absl::Seconds(10));
  EXPECT_EQ(b.failures(), 6u);
  for (int i = 0; i < 100; ++i) b.RecordFailure(kNow);  // no overflow
  EXPECT_EQ(b.next_attempt_at(), kNow + absl::Seconds(10));
  b.Reset();
  EXPECT_TRUE(b.Ready(kNow));
  EXPECT_EQ(b.failures(), 0u);
}

TEST(IntentVerdictTest, ReadBackDecidesWhetherThePatchHappened) {
  const ApplyIntent intent{TestUuid(1), 1000, 1500, 500, kNow};
  bool surprising = true;
  EXPECT_TRUE(IntentWasApplied(intent, 1500, &surprising));
  EXPECT_FALSE(surprising);
  EXPECT_FALSE(IntentWasApplied(intent, 1000, &surprising));
  EXPECT_FALSE(surprising);
  // The parent moved: above what we wrote -> applied (no double count) ...
  EXPECT_TRUE(IntentWasApplied(intent, 1700, &surprising));
  EXPECT_TRUE(surprising);
  // ... below it (reset, admin edit, or never landed) -> re-apply.
  EXPECT_FALSE(IntentWasApplied(intent, 0, &surprising));
  EXPECT_TRUE(surprising);
  EXPECT_FALSE(IntentWasApplied(intent, 1200, &surprising));
  // Written == read (user at the panel's cap): re-applying is harmless.
  const ApplyIntent capped{TestUuid(1), 7, 7, 5, kNow};
  EXPECT_FALSE(IntentWasApplied(capped, 7, &surprising));
}

}  // namespace
}  // namespace hsync::hub
