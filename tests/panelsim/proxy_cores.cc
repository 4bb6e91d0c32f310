#include "tests/panelsim/proxy_cores.h"

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"
#include "tests/panelsim/py_json.h"

namespace hsync::panelsim {
namespace {

std::string Key(const std::string& uuid) { return absl::AsciiStrToLower(uuid); }

nlohmann::json SortedArray(const std::set<std::string>& users) {
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& u : users) out.push_back(u);
  return out;
}

std::set<std::string> ToSet(const std::vector<std::string>& users) {
  std::set<std::string> out;
  for (const std::string& u : users) out.insert(Key(u));
  return out;
}

}  // namespace

void ProxyCores::AddClient(const std::string& uuid) {
  absl::MutexLock lock(&mu_);
  ++driver_calls_[Key(uuid)].add;
  if (core_type_ == CoreType::kXray) xray_.insert(Key(uuid));
}

void ProxyCores::RemoveClient(const std::string& uuid) {
  absl::MutexLock lock(&mu_);
  ++driver_calls_[Key(uuid)].remove;
  if (core_type_ == CoreType::kXray) xray_.erase(Key(uuid));
}

std::set<std::string> ProxyCores::EnabledUsers() const {
  absl::MutexLock lock(&mu_);
  std::set<std::string> all = xray_;
  all.insert(singbox_.begin(), singbox_.end());
  all.insert(wireguard_.begin(), wireguard_.end());
  return all;
}

void ProxyCores::RestartXray(const std::vector<std::string>& users) {
  absl::MutexLock lock(&mu_);
  if (core_type_ == CoreType::kXray) xray_ = ToSet(users);
}

void ProxyCores::RenderSingboxAndWireguard(const std::vector<std::string>& users) {
  absl::MutexLock lock(&mu_);
  singbox_ = ToSet(users);
  wireguard_ = singbox_;
}

std::vector<std::string> ProxyCores::Members() const {
  absl::MutexLock lock(&mu_);
  std::set<std::string> all = xray_;
  all.insert(singbox_.begin(), singbox_.end());
  return std::vector<std::string>(all.begin(), all.end());
}

int64_t ProxyCores::CarryTraffic(const std::string& uuid, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  const std::string key = Key(uuid);
  int64_t carried = 0;
  if (xray_.count(key) > 0) carried += bytes;
  if (singbox_.count(key) > 0) carried += bytes;
  if (carried > 0) pending_bytes_[key] += carried;
  return carried;
}

std::map<std::string, int64_t> ProxyCores::TakeUsage() {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> out;
  out.swap(pending_bytes_);
  return out;
}

void ProxyCores::ReturnUsage(const std::string& uuid, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  pending_bytes_[Key(uuid)] += bytes;
}

bool ProxyCores::InXray(const std::string& uuid) const {
  absl::MutexLock lock(&mu_);
  return xray_.count(Key(uuid)) > 0;
}

bool ProxyCores::InSingbox(const std::string& uuid) const {
  absl::MutexLock lock(&mu_);
  return singbox_.count(Key(uuid)) > 0;
}

std::string ProxyCores::ToJson() const {
  absl::MutexLock lock(&mu_);
  return PyDumps(nlohmann::json{{"core_type", CoreTypeName(core_type_)},
                                {"xray", SortedArray(xray_)},
                                {"singbox", SortedArray(singbox_)},
                                {"wireguard", SortedArray(wireguard_)}});
}

std::string ProxyCores::DriverCallsJson() const {
  absl::MutexLock lock(&mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [uuid, calls] : driver_calls_) {
    out[uuid] = nlohmann::json{{"add", calls.add}, {"remove", calls.remove}};
  }
  return PyDumps(out);
}

void ProxyCores::ResetDriverCalls() {
  absl::MutexLock lock(&mu_);
  driver_calls_.clear();
}

}  // namespace hsync::panelsim
