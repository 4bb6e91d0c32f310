#include "tests/panelsim/sim_counters.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/panelsim/py_json.h"

namespace hsync::panelsim {

void SimCounters::CountCall(std::string_view method, std::string_view route) {
  absl::MutexLock lock(&mu_);
  ++calls_[std::string(method) + " " + std::string(route)];
}

void SimCounters::CountUsagePatch() {
  absl::MutexLock lock(&mu_);
  ++usage_patches_;
}

void SimCounters::CountApplyUsers() {
  absl::MutexLock lock(&mu_);
  ++apply_users_;
}

void SimCounters::CountTrafficTick() {
  absl::MutexLock lock(&mu_);
  ++traffic_ticks_;
}

void SimCounters::CountSessionCreated() {
  absl::MutexLock lock(&mu_);
  ++sessions_created_;
}

void SimCounters::CountApplyRun() {
  absl::MutexLock lock(&mu_);
  ++apply_runs_;
}

void SimCounters::CountApplyBusy() {
  absl::MutexLock lock(&mu_);
  ++apply_busy_;
}

void SimCounters::CountFullInstall() {
  absl::MutexLock lock(&mu_);
  ++full_installs_;
}

void SimCounters::CountSingboxRestart() {
  absl::MutexLock lock(&mu_);
  ++singbox_restarts_;
}

void SimCounters::CountXrayRestart() {
  absl::MutexLock lock(&mu_);
  ++xray_restarts_;
}

void SimCounters::CountUsageTaskRun() {
  absl::MutexLock lock(&mu_);
  ++usage_task_runs_;
}

void SimCounters::AddBusy(absl::Duration spent) {
  absl::MutexLock lock(&mu_);
  busy_ += spent;
}

void SimCounters::Reset() {
  absl::MutexLock lock(&mu_);
  calls_.clear();
  usage_patches_ = 0;
  apply_users_ = 0;
  traffic_ticks_ = 0;
  sessions_created_ = 0;
  apply_runs_ = 0;
  apply_busy_ = 0;
  full_installs_ = 0;
  singbox_restarts_ = 0;
  xray_restarts_ = 0;
  usage_task_runs_ = 0;
  busy_ = absl::ZeroDuration();
}

std::string SimCounters::ToJson(const std::string& driver_calls_json) const {
  absl::MutexLock lock(&mu_);
  nlohmann::json calls = nlohmann::json::object();
  for (const auto& [key, count] : calls_) calls[key] = count;
  return PyDumps(nlohmann::json{{"calls", calls},
                                {"usage_patches", usage_patches_},
                                {"apply_users", apply_users_},
                                {"traffic_ticks", traffic_ticks_},
                                {"sessions_created", sessions_created_},
                                {"apply_runs", apply_runs_},
                                {"apply_busy", apply_busy_},
                                {"full_installs", full_installs_},
                                {"singbox_restarts", singbox_restarts_},
                                {"xray_restarts", xray_restarts_},
                                {"usage_task_runs", usage_task_runs_},
                                {"busy_ms", absl::ToInt64Milliseconds(busy_)},
                                {"driver_calls", nlohmann::json::parse(driver_calls_json)}});
}

}  // namespace hsync::panelsim
