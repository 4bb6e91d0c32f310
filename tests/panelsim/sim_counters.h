// Call counters behind GET /_sim/counters. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"

namespace hsync::panelsim {

class SimCounters {
 public:
  // One request for route `route` (ping, info, list_users, ...) with `method`.
  void CountCall(std::string_view method, std::string_view route);
  // A PATCH that changed the stored current_usage.
  void CountUsagePatch();
  void CountApplyUsers();
  void CountTrafficTick();
  // A new server-side session (a request that logged in without a live session cookie).
  void CountSessionCreated();
  // Zeroes everything.
  void Reset();
  // {"apply_users":N,"calls":{"<METHOD> <route>":N},"sessions_created":N,
  //  "traffic_ticks":N,"usage_patches":N}
  std::string ToJson() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, int64_t> calls_ ABSL_GUARDED_BY(mu_);
  int64_t usage_patches_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t apply_users_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t traffic_ticks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sessions_created_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace hsync::panelsim
