// The panel's periodic reset (PANEL.md §3, PeriodicResetDue): sets
// current_usage = 0 and last_reset_time = today for users whose mode period
// has come round; optionally on a timer. Thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "tests/panelsim/periodic_task.h"
#include "tests/panelsim/sim_clock.h"

namespace hsync::panelsim {

class UsageResetter {
 public:
  explicit UsageResetter(SimClock& clock) : clock_(clock) {}
  ~UsageResetter() { Stop(); }

  // Checks every `interval_ms` (> 0) in the background.
  void Start(int interval_ms);
  void Stop();

  // Resets every user whose period is due; returns how many.
  absl::StatusOr<int> ResetDue();
  // Resets `uuid` unconditionally; NotFound for an unknown uuid.
  absl::Status ResetUser(const std::string& uuid);

 private:
  SimClock& clock_;
  PeriodicTask task_;
};

}  // namespace hsync::panelsim
