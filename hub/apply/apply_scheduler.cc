#include "hub/apply/apply_scheduler.h"

#include <algorithm>
#include <tuple>
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

void ApplyScheduler::Judge(PendingIndex& index, const PendingUser& user,
                           const RosterLookup& lookup) {
  ++stats_.ranked_last_plan;
  UserUrgency urgency;
  if (lookup) {
    if (std::optional<hiddify_sync::v1::User> view = lookup(user.uuid)) {
      urgency = RankUrgency(user, view, rates_.BytesPerSecond(user.uuid),
                            UrgencyRule{schedule_.urgent_margin_bytes, schedule_.urgent_horizon});
    }
  }
  index.SetUrgency(user.uuid, urgency);
}

std::vector<DueUser> ApplyScheduler::Plan(PendingIndex& index, const PendingIndexUpdate& update,
                                          absl::Time now, const RosterLookup& lookup,
                                          const std::function<bool(const std::string&)>& skip) {
  rates_.ObserveChanged(update.changed, now);
  if (update.full) rates_.Prune();
  stats_.ranked_last_plan = 0;
  if (update.full || now - last_rank_all_ >= kRankAllInterval || now < last_rank_all_) {
    last_rank_all_ = now;
    index.ForEachOldestFirst([&](const PendingUser& p) {
      Judge(index, p, lookup);
      return true;
    });
  } else {
    // Those urgent so far (their rate decays, their roster view moves) and
    // those that changed, once each.
    std::vector<std::string> again;
    again.reserve(index.urgent().size() + update.changed.size());
    for (const auto& [uuid, urgency] : index.urgent()) again.push_back(uuid);
    for (const PendingUser& p : update.changed) again.push_back(p.uuid);
    std::sort(again.begin(), again.end());
    again.erase(std::unique(again.begin(), again.end()), again.end());
    for (const std::string& uuid : again) {
      if (const PendingUser* p = index.Find(uuid)) Judge(index, *p, lookup);
    }
  }

  // The candidates: every urgent user, then the oldest others whose bytes
  // waited max_apply_delay, as many as a plan may hold.
  std::vector<DueUser> due;
  for (const auto& [uuid, urgency] : index.urgent()) {
    if (skip && skip(uuid)) continue;
    due.push_back({*index.Find(uuid), true, urgency.time_to_quota});
  }
  size_t aged = 0;
  index.ForEachOldestFirst([&](const PendingUser& p) {
    if (now - p.first_pending_at < schedule_.max_apply_delay) return false;  // the rest are younger
    if (index.urgent().count(p.uuid) > 0 || (skip && skip(p.uuid))) return true;
    due.push_back({p, false, absl::InfiniteDuration()});
    return schedule_.max_users == 0 || ++aged < schedule_.max_users;
  });
  // Urgent first, the closest to the quota first; then the oldest.
  std::sort(due.begin(), due.end(), [](const DueUser& a, const DueUser& b) {
    if (a.urgent != b.urgent) return a.urgent;
    if (a.urgent && a.time_to_quota != b.time_to_quota) return a.time_to_quota < b.time_to_quota;
    return std::tie(a.pending.first_pending_at, a.pending.uuid) <
           std::tie(b.pending.first_pending_at, b.pending.uuid);
  });
  if (schedule_.max_users > 0 && due.size() > schedule_.max_users) due.resize(schedule_.max_users);
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
