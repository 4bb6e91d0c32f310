#include "hub/apply/urgency_ranker.h"

namespace hsync::hub {

UserUrgency RankUrgency(const PendingUser& pending,
                        const std::optional<hiddify_sync::v1::User>& roster_view,
                        double bytes_per_second, const UrgencyRule& rule) {
  UserUrgency out;
  if (!roster_view.has_value()) return out;
  const uint64_t limit = roster_view->usage_limit_bytes();
  const uint64_t threshold = limit > rule.margin_bytes ? limit - rule.margin_bytes : 0;
  const uint64_t current = roster_view->current_usage_bytes();
  // current + pending >= threshold, without overflow.
  if (current >= threshold || pending.bytes >= threshold - current) {
    out.urgent = true;
    out.time_to_quota = absl::ZeroDuration();
    return out;
  }
  const uint64_t left = threshold - current - pending.bytes;
  if (bytes_per_second <= 0) return out;
  const double seconds = static_cast<double>(left) / bytes_per_second;
  // Beyond ~300 years the estimate means "never" (and would overflow).
  if (seconds > 1e10) return out;
  out.time_to_quota = absl::Seconds(seconds);
  out.urgent = out.time_to_quota <= rule.horizon;
  return out;
}

}  // namespace hsync::hub
