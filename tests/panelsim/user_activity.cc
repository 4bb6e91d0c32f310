#include "tests/panelsim/user_activity.h"

#include <algorithm>

namespace hsync::panelsim {

namespace {

int64_t RemainingDaysOf(int64_t package_days, const std::optional<absl::CivilDay>& start_date,
                        absl::CivilDay today) {
  int64_t days = package_days;
  if (start_date.has_value()) days = package_days - (today - *start_date);
  return std::min<int64_t>(days, 10000);
}

}  // namespace

int64_t RemainingDays(const UserRecord& user, absl::CivilDay today) {
  return RemainingDaysOf(user.package_days, user.start_date, today);
}

bool IsActive(bool enable, int64_t usage_limit, int64_t current_usage, int64_t package_days,
              const std::optional<absl::CivilDay>& start_date, absl::CivilDay today) {
  if (!enable) return false;
  if (usage_limit < current_usage) return false;
  return RemainingDaysOf(package_days, start_date, today) >= 0;
}

bool IsActive(const UserRecord& user, absl::CivilDay today) {
  return IsActive(user.enable, user.usage_limit, user.current_usage, user.package_days,
                  user.start_date, today);
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
