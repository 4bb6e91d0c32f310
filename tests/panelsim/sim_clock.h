// panelsim's notion of "today": the machine's local date, or a date fixed by
// --today / POST /_sim/clock. Thread-safe.
#pragma once

#include <optional>

#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"

namespace hsync::panelsim {

class SimClock {
 public:
  explicit SimClock(std::optional<absl::CivilDay> fixed_today = std::nullopt);

  // The date is_active, resets and traffic use.
  absl::CivilDay Today() const;
  // Today() with the current local time of day (for last_online).
  absl::CivilSecond Now() const;
  // Fixes "today" from now on.
  void SetToday(absl::CivilDay day);

 private:
  mutable absl::Mutex mu_;
  std::optional<absl::CivilDay> fixed_today_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::panelsim
