// The users' traffic, played: every tick some random members of the proxy
// cores carry bytes (ProxyCores::CarryTraffic: xray members through xray,
// sing-box members through sing-box); the bytes reach the database only
// through the usage task. AddTraffic() is a test hook that writes bytes
// straight into the table as one usage-task add would (no core needed).
// Keeps the totals carried or written (GET /_sim/traffic). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "tests/panelsim/periodic_task.h"
#include "tests/panelsim/proxy_cores.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/usage_adder.h"

namespace hsync::panelsim {

struct TrafficOptions {
  int interval_ms = 0;  // > 0 starts the background generator
  int users_per_tick = 10;
  int64_t max_bytes = 50'000'000;
  uint64_t seed = 0;
};

class TrafficGenerator {
 public:
  TrafficGenerator(TrafficOptions options, ProxyCores& cores, UsageAdder& adder, SimClock& clock,
                   SimCounters& counters);
  ~TrafficGenerator();

  // Starts ticking when interval_ms > 0.
  void Start();
  void Stop();
  // Pauses/resumes the ticks; returns after a tick in flight has finished.
  void SetEnabled(bool enabled);

  // Adds `bytes` to user `uuid` in the table now, as the usage task's add
  // does (atomic in 12.x, read-modify-write with the gap in 10.80). Returns
  // current_usage after it; NotFound for an unknown uuid.
  absl::StatusOr<int64_t> AddTraffic(const std::string& uuid, int64_t bytes);

  // {"enabled":B,"per_user":{...},"total_bytes":N}
  std::string StatusJson() const;

 private:
  void Tick();
  void Record(const std::string& uuid, int64_t bytes);

  const TrafficOptions options_;
  ProxyCores& cores_;
  UsageAdder& adder_;
  SimClock& clock_;
  SimCounters& counters_;
  PeriodicTask task_;

  absl::Mutex tick_mu_;  // held for a whole tick
  mutable absl::Mutex mu_;
  bool enabled_ ABSL_GUARDED_BY(mu_);
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> per_user_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::panelsim
