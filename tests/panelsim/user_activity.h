// The panel's derived user state (PANEL.md §3, models/user.py): remaining
// days, is_active, and whether a periodic reset is due.
#pragma once

#include <cstdint>

#include "absl/time/civil_time.h"
#include "tests/panelsim/user_record.h"

namespace hsync::panelsim {

// package_days - (today - start_date) with a start date, else package_days; capped at 10000.
int64_t RemainingDays(const UserRecord& user, absl::CivilDay today);

// enable and not (current_usage > usage_limit) and RemainingDays >= 0. Mode plays no part.
bool IsActive(const UserRecord& user, absl::CivilDay today);
bool IsActive(bool enable, int64_t usage_limit, int64_t current_usage, int64_t package_days,
              const std::optional<absl::CivilDay>& start_date, absl::CivilDay today);

// Days per period of a mode: daily 1, weekly 7, monthly 30, anything else 10000.
int64_t ModePeriodDays(const std::optional<std::string>& mode);

// The panel's periodic-reset rule: a user with a resetting mode, a start date and
// start_date + package_days >= today is reset when it has no last_reset_time, or
// when it was not reset today and (today - start_date) is a multiple of the period.
bool PeriodicResetDue(const UserRecord& user, absl::CivilDay today);

}  // namespace hsync::panelsim
