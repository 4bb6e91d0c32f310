#include "tests/panelsim/user_activity.h"

#include <algorithm>

namespace hsync::panelsim {

int64_t RemainingDays(const UserRecord& user, absl::CivilDay today) {
  int64_t days = user.package_days;
  if (user.start_date.has_value()) days = user.package_days - (today - *user.start_date);
  return std::min<int64_t>(days, 10000);
}

bool IsActive(const UserRecord& user, absl::CivilDay today) {
  if (!user.enable) return false;
  if (user.usage_limit < user.current_usage) return false;
  return RemainingDays(user, today) >= 0;
}

int64_t ModePeriodDays(const std::optional<std::string>& mode) {
  if (!mode.has_value()) return 10000;
  if (*mode == "daily") return 1;
  if (*mode == "weekly") return 7;
  if (*mode == "monthly") return 30;
  return 10000;
}

bool PeriodicResetDue(const UserRecord& user, absl::CivilDay today) {
  if (!user.mode.has_value() || *user.mode == "no_reset") return false;
  if (!user.start_date.has_value()) return false;
  if (*user.start_date + user.package_days < today) return false;  // package over
  if (!user.last_reset_time.has_value()) return true;
  if (today - *user.last_reset_time == 0) return false;
  const int64_t elapsed = today - *user.start_date;
  const int64_t period = ModePeriodDays(user.mode);
  // Python's % is non-negative for a positive divisor.
  return ((elapsed % period) + period) % period == 0;
}

}  // namespace hsync::panelsim
