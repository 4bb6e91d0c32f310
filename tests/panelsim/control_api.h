// The /_sim/ control API (tests/panelsim/README.md): faults, counters,
// traffic, resets, the clock, and the child panel's "apply users" hook.
#pragma once

#include "tests/panelsim/fault_injector.h"
#include "tests/panelsim/http_types.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/traffic_generator.h"
#include "tests/panelsim/usage_resetter.h"

namespace hsync::panelsim {

class ControlApi {
 public:
  ControlApi(FaultInjector& faults, SimCounters& counters, TrafficGenerator& traffic,
             UsageResetter& resetter, SimClock& clock)
      : faults_(faults), counters_(counters), traffic_(traffic), resetter_(resetter), clock_(clock) {}

  // True for paths this API owns (/_sim/...).
  static bool Owns(const std::string& path);
  SimResponse Handle(const SimRequest& request);

 private:
  FaultInjector& faults_;
  SimCounters& counters_;
  TrafficGenerator& traffic_;
  UsageResetter& resetter_;
  SimClock& clock_;
};

}  // namespace hsync::panelsim
