// The panel's usage task (celery, every 60 s; PANEL.md §3, usage.py), played:
// takes the cores' per-user byte counters (zeroing them), runs the periodic
// reset job when due, adds the bytes to the user table (UsageAdder: atomic
// in 12.x, read-modify-write in 10.80), then for the users WITH TRAFFIC in
// this run only compares the drivers' enabled users with is_active and adds
// / removes them; removes zombie users (enabled in a core, gone from the
// table) when some uuid with traffic was not found; and calls
// quick_apply_users() when a core changed. Runs are serialised (the panel's
// Redis lock). If the database write fails the bytes stay in the cores'
// counters for the next run (the real panel would drop them).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "tests/panelsim/periodic_task.h"
#include "tests/panelsim/proxy_cores.h"
#include "tests/panelsim/quick_apply.h"
#include "tests/panelsim/reset_job.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/usage_adder.h"

namespace hsync::panelsim {

class UsageTask {
 public:
  UsageTask(ProxyCores& cores, UsageAdder& adder, ResetJob& reset_job, QuickApplyUsers& quick_apply,
            SimClock& clock, SimCounters& counters)
      : cores_(cores),
        adder_(adder),
        reset_job_(reset_job),
        quick_apply_(quick_apply),
        clock_(clock),
        counters_(counters) {}
  ~UsageTask() { Stop(); }

  // Runs every `interval_ms` (> 0) in the background.
  void Start(int interval_ms);
  void Stop();

  // One run now; returns the number of users with traffic in it.
  absl::StatusOr<int> RunOnce();

 private:
  absl::StatusOr<int> RunLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);

  ProxyCores& cores_;
  UsageAdder& adder_;
  ResetJob& reset_job_;
  QuickApplyUsers& quick_apply_;
  SimClock& clock_;
  SimCounters& counters_;
  absl::Mutex run_mu_;
  PeriodicTask task_;
};

}  // namespace hsync::panelsim
