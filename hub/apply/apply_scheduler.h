// Which users' pending bytes the applier writes to the parent, in what order,
// and how many it may write (api mode: every PATCH is expensive for the
// panel, PANEL.md §1). Ranking: urgent users first (hub/apply/urgency_ranker.h:
// their pending bytes or their recent rate take them to the quota soon), the
// closest to the quota first; then the others whose oldest bytes waited
// max_apply_delay, oldest first. The writes per minute come from a
// PatchBudget (hub/apply/patch_budget.h) when the parent writer needs one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/apply/patch_budget.h"
#include "hub/apply/pending_index.h"
#include "hub/apply/urgency_ranker.h"
#include "hub/apply/usage_rate_tracker.h"
#include "hub/journal/journal.h"

namespace hsync::hub {

struct ApplySchedule {
  absl::Duration max_apply_delay;  // bytes older than this are due
  uint64_t urgent_margin_bytes = 0;
  size_t max_users = 0;            // per cycle; 0 = no limit
  // A user whose recent rate takes it to its quota within this is urgent.
  absl::Duration urgent_horizon = absl::ZeroDuration();
};

// True when the user's pending bytes take it to its quota or within
// `margin` of it, by the roster's view of the user (its last known usage and
// limit): current + pending >= limit - margin.
bool IsUrgent(const PendingUser& pending, const hiddify_sync::v1::User& roster_view,
              uint64_t margin);

struct DueUser {
  PendingUser pending;
  bool urgent = false;
  absl::Duration time_to_quota = absl::InfiniteDuration();
};

using RosterLookup =
    std::function<std::optional<hiddify_sync::v1::User>(const std::string& uuid)>;

// The users to apply now, most urgent first, then the oldest. A user is due
// when urgent (roster view known) or when its oldest bytes waited at least
// max_apply_delay (always, also when the roster does not know the user).
// `skip` excludes users (backoff, unresolved intent); `lookup` and `rate`
// (bytes per second of a user) may be empty.
std::vector<DueUser> SelectDueUsers(const std::vector<PendingUser>& pending, absl::Time now,
                                    const ApplySchedule& schedule, const RosterLookup& lookup,
                                    const std::function<bool(const std::string&)>& skip,
                                    const std::function<double(const std::string&)>& rate = {});

struct ApplySchedulerStats {
  uint32_t writes_per_minute_budget = 0;  // 0 = unlimited
  uint64_t writes_last_minute = 0;
  uint64_t urgent_due = 0;            // urgent users in the last plan
  uint64_t deferred_by_budget = 0;    // due users the last cycle left for lack of budget
  uint64_t deferred_by_budget_total = 0;
  uint64_t ranked_last_plan = 0;      // users whose urgency the last plan judged
};

// The applier's planner: learns each user's rate from the pending totals it
// is shown, ranks the due users and hands out the write budget. Not
// thread-safe (the applier's cycle).
class ApplyScheduler {
 public:
  // How often Plan() re-judges every pending user's urgency (in memory, one
  // roster lookup each); the roster poller reads the parent's list every 30 s.
  static constexpr absl::Duration kRankAllInterval = absl::Seconds(30);

  // `budget` null = writes are not budgeted (e.g. a parent written through
  // its database, where a batch is cheap).
  ApplyScheduler(ApplySchedule schedule, std::unique_ptr<PatchBudget> budget);

  // Learns the rates from `update` (what the index's last refresh changed),
  // judges the urgency of the users that changed, of those urgent so far and
  // -- after a full read and every kRankAllInterval -- of every pending user
  // (the roster's view of a user can change while its pending bytes do not,
  // and there is no notice of that: this catches it), keeps it in the index,
  // and returns the due users ranked as SelectDueUsers ranks them: the work
  // is proportional to the users that changed or are due, not to all
  // pending users.
  std::vector<DueUser> Plan(PendingIndex& index, const PendingIndexUpdate& update,
                            absl::Time now, const RosterLookup& lookup,
                            const std::function<bool(const std::string&)>& skip);
  // Before each write (one user's PATCH): true = go; false = the budget is
  // spent, leave this and the remaining `left_in_plan` due users for later.
  bool TakeWrite(absl::Time now, size_t left_in_plan);
  // True when writes are budgeted (TakeWrite can say no).
  bool budgeted() const { return budget_ != nullptr; }
  // The user's `bytes` reached the parent.
  void NoteApplied(const std::string& uuid, uint64_t bytes);
  ApplySchedulerStats Stats(absl::Time now);

 private:
  ApplySchedule schedule_;
  std::unique_ptr<PatchBudget> budget_;
  PatchBudget counter_{0};  // writes of the last minute when not budgeted
  // Judges the user's urgency now and records it in the index.
  void Judge(PendingIndex& index, const PendingUser& user, const RosterLookup& lookup);

  UsageRateTracker rates_;
  ApplySchedulerStats stats_;
  absl::Time last_rank_all_ = absl::InfinitePast();
};

}  // namespace hsync::hub
