// Call counters behind GET /_sim/counters. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

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
  // Apply runs (install.sh): started, refused with exit 12, full installs.
  void CountApplyRun();
  void CountApplyBusy();
  void CountFullInstall();
  void CountSingboxRestart();
  void CountXrayRestart();
  void CountUsageTaskRun();
  // Time the panel spent serving one API request (the serial clock).
  void AddBusy(absl::Duration spent);
  // Zeroes everything.
  void Reset();
  // {"apply_busy":N,"apply_runs":N,"apply_users":N,"busy_ms":N,
  //  "calls":{"<METHOD> <route>":N},"driver_calls":<driver_calls_json>,
  //  "full_installs":N,"sessions_created":N,"singbox_restarts":N,
  //  "traffic_ticks":N,"usage_patches":N,"usage_task_runs":N,"xray_restarts":N}
  std::string ToJson(const std::string& driver_calls_json = "{}") const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, int64_t> calls_ ABSL_GUARDED_BY(mu_);
  int64_t usage_patches_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t apply_users_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t traffic_ticks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sessions_created_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t apply_runs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t apply_busy_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t full_installs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t singbox_restarts_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t xray_restarts_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t usage_task_runs_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration busy_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::panelsim
