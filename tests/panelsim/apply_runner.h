// `/opt/hiddify-manager/install.sh <args>` on a Hiddify server, played
// (PANEL.md §4): a run reads the database at its start, takes
// `duration_ms`, then re-renders sing-box and WireGuard from what it read
// and restarts sing-box (counted); xray is left alone. A run while another
// is active (its lock file younger than 120 s) exits 12 at once and does
// nothing. `apply_users --no-gui` is an apply run; any other argument list
// (`--no-gui apply_users` included) is a full install, which also restarts
// xray. Thread-safe.
#pragma once

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/panelsim/proxy_cores.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"

namespace hsync::panelsim {

class ApplyRunner {
 public:
  ApplyRunner(int duration_ms, ProxyCores& cores, SimClock& clock, SimCounters& counters);
  ~ApplyRunner();
  ApplyRunner(const ApplyRunner&) = delete;
  ApplyRunner& operator=(const ApplyRunner&) = delete;

  // Runs install.sh `args` now and returns its exit code (0, 12 when busy, 1
  // when the database could not be read).
  int Run(const std::vector<std::string>& args);
  // quick_apply_users(): starts `apply_users --no-gui` in the background; a
  // run already active makes it exit 12 (counted) at once.
  void StartInBackground();
  // Stops the background worker (a run in progress finishes first).
  void Stop();

 private:
  // Takes the lock file; false (busy, counted) if a run holds it.
  bool TryLock();
  // The run itself, with the lock held; releases it at the end.
  int RunLocked(const std::vector<std::string>& args);
  void BackgroundLoop();

  const absl::Duration duration_;
  ProxyCores& cores_;
  SimClock& clock_;
  SimCounters& counters_;

  absl::Mutex mu_;
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time locked_at_ ABSL_GUARDED_BY(mu_);
  bool background_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar wake_;
  std::thread worker_;
};

}  // namespace hsync::panelsim
