#include "hub/apply/apply_scheduler.h"

#include <algorithm>

namespace hsync::hub {

bool IsUrgent(const PendingUser& pending, const hiddify_sync::v1::User& roster_view,
              uint64_t margin) {
  const uint64_t limit = roster_view.usage_limit_bytes();
  const uint64_t threshold = limit > margin ? limit - margin : 0;
  const uint64_t current = roster_view.current_usage_bytes();
  // current + pending >= threshold, without overflow.
  return current >= threshold || pending.bytes >= threshold - current;
}

std::vector<DueUser> SelectDueUsers(
    const std::vector<PendingUser>& pending, absl::Time now, const ApplySchedule& schedule,
    const std::function<std::optional<hiddify_sync::v1::User>(const std::string&)>& lookup,
    const std::function<bool(const std::string&)>& skip) {
  std::vector<DueUser> due;
  for (const PendingUser& p : pending) {
    if (p.bytes == 0 || (skip && skip(p.uuid))) continue;
    bool urgent = false;
    if (lookup) {
      if (std::optional<hiddify_sync::v1::User> view = lookup(p.uuid)) {
        urgent = IsUrgent(p, *view, schedule.urgent_margin_bytes);
      }
    }
    if (urgent || now - p.first_pending_at >= schedule.max_apply_delay) {
      due.push_back({p, urgent});
    }
  }
  // `pending` is oldest first; keep that order within each group.
  std::stable_partition(due.begin(), due.end(), [](const DueUser& d) { return d.urgent; });
  if (schedule.max_users > 0 && due.size() > schedule.max_users) due.resize(schedule.max_users);
  return due;
}

}  // namespace hsync::hub
