#include "hub/apply/apply_scheduler.h"

#include <algorithm>
#include <utility>

namespace hsync::hub {

bool IsUrgent(const PendingUser& pending, const hiddify_sync::v1::User& roster_view,
              uint64_t margin) {
  return RankUrgency(pending, roster_view, 0, UrgencyRule{margin, absl::ZeroDuration()}).urgent;
}

std::vector<DueUser> SelectDueUsers(const std::vector<PendingUser>& pending, absl::Time now,
                                    const ApplySchedule& schedule, const RosterLookup& lookup,
                                    const std::function<bool(const std::string&)>& skip,
                                    const std::function<double(const std::string&)>& rate) {
  const UrgencyRule rule{schedule.urgent_margin_bytes, schedule.urgent_horizon};
  std::vector<DueUser> due;
  for (const PendingUser& p : pending) {
    if (p.bytes == 0 || (skip && skip(p.uuid))) continue;
    UserUrgency urgency;
    if (lookup) {
      if (std::optional<hiddify_sync::v1::User> view = lookup(p.uuid)) {
        urgency = RankUrgency(p, view, rate ? rate(p.uuid) : 0.0, rule);
      }
    }
    if (urgency.urgent || now - p.first_pending_at >= schedule.max_apply_delay) {
      due.push_back({p, urgency.urgent, urgency.time_to_quota});
    }
  }
  // `pending` is oldest first; keep that order among equals.
  std::stable_sort(due.begin(), due.end(), [](const DueUser& a, const DueUser& b) {
    if (a.urgent != b.urgent) return a.urgent;
    return a.urgent && a.time_to_quota < b.time_to_quota;
  });
  if (schedule.max_users > 0 && due.size() > schedule.max_users) due.resize(schedule.max_users);
  return due;
}

ApplyScheduler::ApplyScheduler(ApplySchedule schedule, std::unique_ptr<PatchBudget> budget)
    : schedule_(schedule), budget_(std::move(budget)) {
  stats_.writes_per_minute_budget = budget_ == nullptr ? 0 : budget_->per_minute();
}

std::vector<DueUser> ApplyScheduler::Plan(const std::vector<PendingUser>& pending,
                                          absl::Time now, const RosterLookup& lookup,
                                          const std::function<bool(const std::string&)>& skip) {
  rates_.Observe(pending, now);
  std::vector<DueUser> due = SelectDueUsers(
      pending, now, schedule_, lookup, skip,
      [this](const std::string& uuid) { return rates_.BytesPerSecond(uuid); });
  stats_.urgent_due = static_cast<uint64_t>(
      std::count_if(due.begin(), due.end(), [](const DueUser& d) { return d.urgent; }));
  stats_.deferred_by_budget = 0;
  return due;
}

bool ApplyScheduler::TakeWrite(absl::Time now, size_t left_in_plan) {
  PatchBudget& counter = budget_ != nullptr ? *budget_ : counter_;
  if (counter.TryTake(now)) return true;
  stats_.deferred_by_budget = left_in_plan;
  stats_.deferred_by_budget_total += left_in_plan;
  return false;
}

void ApplyScheduler::NoteApplied(const std::string& uuid, uint64_t bytes) {
  rates_.NoteApplied(uuid, bytes);
}

ApplySchedulerStats ApplyScheduler::Stats(absl::Time now) {
  ApplySchedulerStats out = stats_;
  PatchBudget& counter = budget_ != nullptr ? *budget_ : counter_;
  out.writes_last_minute = counter.TakenLastMinute(now);
  return out;
}

}  // namespace hsync::hub
