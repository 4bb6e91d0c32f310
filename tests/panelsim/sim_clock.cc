#include "tests/panelsim/sim_clock.h"

#include "absl/time/clock.h"
#include "common/panel_time.h"

namespace hsync::panelsim {

SimClock::SimClock(std::optional<absl::CivilDay> fixed_today) : fixed_today_(fixed_today) {}

absl::CivilDay SimClock::Today() const {
  absl::MutexLock lock(&mu_);
  if (fixed_today_.has_value()) return *fixed_today_;
  return PanelToday();
}

absl::CivilSecond SimClock::Now() const {
  const absl::CivilSecond local = absl::ToCivilSecond(absl::Now(), PanelTimeZone());
  const absl::CivilDay today = Today();
  return absl::CivilSecond(today.year(), today.month(), today.day(), local.hour(), local.minute(),
                           local.second());
}

void SimClock::SetToday(absl::CivilDay day) {
  absl::MutexLock lock(&mu_);
  fixed_today_ = day;
}

}  // namespace hsync::panelsim
