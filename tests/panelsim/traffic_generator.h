// The panel's usage task, played (PANEL.md §3): adds bytes to users by
// read-modify-write of current_usage with a configurable gap between the read
// and the write, sets last_online = now and start_date = today when it was
// NULL. Keeps the totals it meant to add (GET /_sim/traffic). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <random>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "tests/panelsim/periodic_task.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"

namespace hsync::panelsim {

struct TrafficOptions {
  int interval_ms = 0;  // > 0 starts the background generator
  int users_per_tick = 10;
  int64_t max_bytes = 50'000'000;
  int rmw_gap_ms = 0;
  uint64_t seed = 0;
};

class TrafficGenerator {
 public:
  TrafficGenerator(TrafficOptions options, SimClock& clock, SimCounters& counters);
  ~TrafficGenerator();

  // Starts ticking when interval_ms > 0.
  void Start();
  void Stop();
  // Pauses/resumes the ticks; returns after a tick in flight has finished.
  void SetEnabled(bool enabled);

  // One read-modify-write of `bytes` to user `uuid` now (honours the gap).
  // Returns the value written; NotFound for an unknown uuid.
  absl::StatusOr<int64_t> AddTraffic(const std::string& uuid, int64_t bytes);

  // {"enabled":B,"per_user":{...},"total_bytes":N}
  std::string StatusJson() const;

 private:
  struct Target {
    int64_t id;
    std::string uuid;
    int64_t bytes;
  };
  void Tick();
  // Reads every target's row, waits the gap, writes the sums back; returns the
  // value written per target (in order; nullopt for a row that vanished).
  absl::StatusOr<std::vector<std::optional<int64_t>>> ReadModifyWrite(
      const std::vector<Target>& targets);
  // Adds the bytes of the targets that were written to the totals.
  void Record(const std::vector<Target>& targets,
              const std::vector<std::optional<int64_t>>& written);

  const TrafficOptions options_;
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
