// The /_sim/ control API (tests/panelsim/README.md): faults, counters,
// traffic, resets, the clock, the cores, the usage task and install.sh runs.
#pragma once

#include <optional>
#include <string>

#include "nlohmann/json.hpp"

#include "tests/panelsim/apply_runner.h"
#include "tests/panelsim/fault_injector.h"
#include "tests/panelsim/http_types.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/traffic_generator.h"
#include "tests/panelsim/proxy_cores.h"
#include "tests/panelsim/quick_apply.h"
#include "tests/panelsim/reset_job.h"
#include "tests/panelsim/usage_resetter.h"
#include "tests/panelsim/usage_task.h"

namespace hsync::panelsim {

// What the control API drives.
struct ControlTargets {
  FaultInjector& faults;
  SimCounters& counters;
  TrafficGenerator& traffic;
  UsageResetter& resetter;
  SimClock& clock;
  ProxyCores& cores;
  ApplyRunner& apply;
  UsageTask& usage_task;
  ResetJob& reset_job;
  QuickApplyUsers& quick_apply;
};

class ControlApi {
 public:
  explicit ControlApi(ControlTargets targets) : t_(targets) {}

  // True for paths this API owns (/_sim/...).
  static bool Owns(const std::string& path);
  SimResponse Handle(const SimRequest& request);

 private:
  // Routes of the cores, the usage task and install.sh; nullopt if not one.
  std::optional<SimResponse> HandleServer(const std::string& method, const std::string& path,
                                          const nlohmann::json& body);

  ControlTargets t_;
};

}  // namespace hsync::panelsim
