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

void SimCounters::Reset() {
  absl::MutexLock lock(&mu_);
  calls_.clear();
  usage_patches_ = 0;
  apply_users_ = 0;
  traffic_ticks_ = 0;
  sessions_created_ = 0;
}

std::string SimCounters::ToJson() const {
  absl::MutexLock lock(&mu_);
  nlohmann::json calls = nlohmann::json::object();
  for (const auto& [key, count] : calls_) calls[key] = count;
  return PyDumps(nlohmann::json{{"calls", calls},
                                {"usage_patches", usage_patches_},
                                {"apply_users", apply_users_},
                                {"traffic_ticks", traffic_ticks_},
                                {"sessions_created", sessions_created_}});
}

}  // namespace hsync::panelsim
