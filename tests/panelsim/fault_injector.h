// Fault rules behind POST/DELETE /_sim/faults (tests/panelsim/README.md).
// Each request of a known route asks Decide() what to do to it. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace hsync::panelsim {

struct FaultRule {
  std::string route = "*";  // "*" or ping, info, list_users, create_user, get_user, ...
  int latency_ms = 0;       // wait before processing
  double error_rate = 0;    // answer error_status without processing
  int error_status = 500;
  double timeout_rate = 0;  // never answer (hold the connection, then drop it)
  double drop_rate = 0;     // close the socket without an answer
  double garbage_rate = 0;  // 200 with a non-JSON body, without processing
  int after_latency_ms = 0; // process fully, then hold the answer this long
  int64_t remaining = -1;   // matching requests still affected; -1 = unlimited
};

enum class FaultAction { kNone, kError, kTimeout, kDrop, kGarbage };

struct FaultDecision {
  int latency_ms = 0;
  FaultAction action = FaultAction::kNone;
  int error_status = 500;
  int after_latency_ms = 0;
};

// The route names a rule may name.
bool IsKnownRouteName(std::string_view route);

// Parses a rule from the JSON body of POST /_sim/faults; InvalidArgument on bad fields.
absl::StatusOr<FaultRule> ParseFaultRule(const nlohmann::json& body);

class FaultInjector {
 public:
  void Add(FaultRule rule);
  void Clear();
  // Applies every live rule matching `route` (each counts down its `remaining`):
  // latencies add up, the first action that fires wins, after-latencies add up.
  FaultDecision Decide(std::string_view route);
  size_t RuleCount() const;
  // Holds a "timeout" answer for up to `duration`; returns early when the rules
  // are cleared (DELETE /_sim/faults) or the process stops, so that held
  // connections do not keep the server's workers busy after a test's fault phase.
  void HoldUnlessCleared(absl::Duration duration);

 private:
  mutable absl::Mutex mu_;
  std::vector<FaultRule> rules_ ABSL_GUARDED_BY(mu_);
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
  int64_t clear_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace hsync::panelsim
