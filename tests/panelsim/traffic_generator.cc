#include "tests/panelsim/traffic_generator.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/py_json.h"

namespace hsync::panelsim {

TrafficGenerator::TrafficGenerator(TrafficOptions options, ProxyCores& cores, UsageAdder& adder,
                                   SimClock& clock, SimCounters& counters)
    : options_(options),
      cores_(cores),
      adder_(adder),
      clock_(clock),
      counters_(counters),
      enabled_(options.interval_ms > 0),
      rng_(options.seed != 0 ? options.seed : std::random_device{}()) {}

TrafficGenerator::~TrafficGenerator() { Stop(); }

void TrafficGenerator::Start() {
  if (options_.interval_ms <= 0) return;
  task_.Start(absl::Milliseconds(options_.interval_ms), [this] { Tick(); });
}

void TrafficGenerator::Stop() { task_.Stop(); }

void TrafficGenerator::SetEnabled(bool enabled) {
  {
    absl::MutexLock lock(&mu_);
    enabled_ = enabled;
  }
  absl::MutexLock wait_for_tick(&tick_mu_);
}

void TrafficGenerator::Tick() {
  absl::MutexLock tick_lock(&tick_mu_);
  std::vector<std::string> members = cores_.Members();
  std::vector<std::pair<std::string, int64_t>> picks;
  {
    absl::MutexLock lock(&mu_);
    if (!enabled_) return;
    std::shuffle(members.begin(), members.end(), rng_);
    members.resize(std::min<size_t>(members.size(), static_cast<size_t>(options_.users_per_tick)));
    std::uniform_int_distribution<int64_t> bytes(1, std::max<int64_t>(1, options_.max_bytes));
    for (const std::string& uuid : members) picks.emplace_back(uuid, bytes(rng_));
  }
  counters_.CountTrafficTick();
  for (const auto& [uuid, bytes] : picks) {
    // Carried by the cores the user is in now (it may have just left all).
    const int64_t carried = cores_.CarryTraffic(uuid, bytes);
    if (carried > 0) Record(uuid, carried);
  }
}

absl::StatusOr<int64_t> TrafficGenerator::AddTraffic(const std::string& uuid, int64_t bytes) {
  DbSession& db = DbSession::ForThisThread();
  ASSIGN_OR_RETURN(ResultSet found, db.Query("SELECT uuid FROM user WHERE uuid = ?", {uuid}));
  if (found.rows.empty()) return absl::NotFoundError(absl::StrCat("no user ", uuid));
  const std::string stored = found.rows[0][0].value_or(uuid);
  RETURN_IF_ERROR(adder_.Add({{absl::AsciiStrToLower(stored), bytes}}, clock_.Now()));
  ASSIGN_OR_RETURN(ResultSet rs, db.Query("SELECT current_usage FROM user WHERE uuid = ?", {stored}));
  int64_t value = 0;
  if (rs.rows.empty() || !absl::SimpleAtoi(rs.rows[0][0].value_or(""), &value)) {
    return absl::NotFoundError(absl::StrCat("no user ", uuid));
  }
  Record(absl::AsciiStrToLower(stored), bytes);
  return value;
}

void TrafficGenerator::Record(const std::string& uuid, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  total_bytes_ += bytes;
  per_user_[uuid] += bytes;
}

std::string TrafficGenerator::StatusJson() const {
  absl::MutexLock lock(&mu_);
  nlohmann::json per_user = nlohmann::json::object();
  for (const auto& [uuid, bytes] : per_user_) per_user[uuid] = bytes;
  return PyDumps(nlohmann::json{
      {"enabled", enabled_}, {"total_bytes", total_bytes_}, {"per_user", per_user}});
}

}  // namespace hsync::panelsim
