// The panel's periodic reset (_reset_priodic_usage, PANEL.md §3), run by the
// usage task before it adds usage: at most every 6 h, and after 05:00 at most
// once per 24 h (in practice the first run after local midnight). For every
// user with a resetting mode, a start date and days left it resets when
// user_should_reset(), and adds to the cores a user that became active by
// it; then it removes from the cores every inactive user whose package ended.
// Thread-safe (callers serialise runs).
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "tests/panelsim/proxy_cores.h"
#include "tests/panelsim/sim_clock.h"

namespace hsync::panelsim {

struct ResetOutcome {
  bool ran = false;       // the 6 h / 24 h rule let it run
  int reset = 0;          // users reset
  bool cores_changed = false;  // driver calls made (the panel then runs quick_apply_users)
};

class ResetJob {
 public:
  ResetJob(ProxyCores& cores, SimClock& clock) : cores_(cores), clock_(clock) {}

  // Runs when the 6 h / 24 h rule says it is due (the first call always is).
  absl::StatusOr<ResetOutcome> RunIfDue();
  // Runs now, whatever the rule says (POST /_sim/reset_job).
  absl::StatusOr<ResetOutcome> RunNow();

  // The rule: `last` = the previous run (nullopt = never), `now` local time.
  static bool Due(const std::optional<absl::CivilSecond>& last, absl::CivilSecond now);

 private:
  absl::StatusOr<ResetOutcome> RunAt(absl::CivilSecond now);

  ProxyCores& cores_;
  SimClock& clock_;
  absl::Mutex mu_;
  std::optional<absl::CivilSecond> last_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::panelsim
