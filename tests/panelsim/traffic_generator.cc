#include "tests/panelsim/traffic_generator.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/py_json.h"
#include "tests/panelsim/shutdown_signal.h"

namespace hsync::panelsim {

TrafficGenerator::TrafficGenerator(TrafficOptions options, SimClock& clock, SimCounters& counters)
    : options_(options),
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
  {
    absl::MutexLock lock(&mu_);
    if (!enabled_) return;
  }
  DbSession& db = DbSession::ForThisThread();
  absl::StatusOr<ResultSet> rs = db.Query("SELECT id, uuid FROM user WHERE enable = 1");
  if (!rs.ok()) {
    LogWarning(absl::StrCat("traffic tick: reading users failed: ", rs.status().message()));
    return;
  }
  std::vector<Target> targets;
  {
    absl::MutexLock lock(&mu_);
    std::vector<size_t> order(rs->rows.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    order.resize(std::min<size_t>(order.size(), static_cast<size_t>(options_.users_per_tick)));
    std::sort(order.begin(), order.end());
    std::uniform_int_distribution<int64_t> bytes(1, std::max<int64_t>(1, options_.max_bytes));
    for (size_t i : order) {
      int64_t id = 0;
      if (!absl::SimpleAtoi(rs->rows[i][0].value_or(""), &id)) continue;
      targets.push_back(Target{id, rs->rows[i][1].value_or(""), bytes(rng_)});
    }
  }
  counters_.CountTrafficTick();
  if (targets.empty()) return;
  absl::StatusOr<std::vector<std::optional<int64_t>>> written = ReadModifyWrite(targets);
  if (!written.ok()) {
    LogWarning(absl::StrCat("traffic tick: writing usage failed: ", written.status().message()));
    return;
  }
  Record(targets, *written);
}

absl::StatusOr<int64_t> TrafficGenerator::AddTraffic(const std::string& uuid, int64_t bytes) {
  DbSession& db = DbSession::ForThisThread();
  ASSIGN_OR_RETURN(ResultSet rs, db.Query("SELECT id, uuid FROM user WHERE uuid = ?", {uuid}));
  if (rs.rows.empty()) return absl::NotFoundError(absl::StrCat("no user ", uuid));
  int64_t id = 0;
  if (!absl::SimpleAtoi(rs.rows[0][0].value_or(""), &id)) {
    return absl::InternalError("unreadable user id");
  }
  const std::vector<Target> targets = {Target{id, rs.rows[0][1].value_or(uuid), bytes}};
  ASSIGN_OR_RETURN(std::vector<std::optional<int64_t>> written, ReadModifyWrite(targets));
  Record(targets, written);
  if (!written[0].has_value()) return absl::NotFoundError(absl::StrCat("no user ", uuid));
  return *written[0];
}

absl::StatusOr<std::vector<std::optional<int64_t>>> TrafficGenerator::ReadModifyWrite(
    const std::vector<Target>& targets) {
  DbSession& db = DbSession::ForThisThread();
  std::vector<std::string> ids;
  for (const Target& t : targets) ids.push_back(absl::StrCat(t.id));
  // The read: current values, as the panel loads its rows.
  ASSIGN_OR_RETURN(ResultSet rs, db.QueryText(absl::StrCat(
                                     "SELECT id, current_usage, start_date IS NULL FROM user "
                                     "WHERE id IN (", absl::StrJoin(ids, ","), ")")));
  struct Loaded {
    int64_t usage = 0;
    bool no_start = false;
    bool found = false;
  };
  std::map<int64_t, Loaded> loaded;
  for (const auto& row : rs.rows) {
    int64_t id = 0;
    Loaded l;
    if (!absl::SimpleAtoi(row[0].value_or(""), &id) ||
        !absl::SimpleAtoi(row[1].value_or(""), &l.usage)) {
      continue;
    }
    l.no_start = row[2].value_or("0") == "1";
    l.found = true;
    loaded[id] = l;
  }
  // The gap in which other writers' changes get lost.
  SleepUnlessStopping(absl::Milliseconds(options_.rmw_gap_ms));

  const std::string now = FormatPanelDateTime(clock_.Now());
  const std::string today = FormatPanelDate(clock_.Today());
  std::vector<std::optional<int64_t>> written;
  RETURN_IF_ERROR(db.Begin());
  for (const Target& t : targets) {
    const Loaded& l = loaded[t.id];
    if (!l.found) {
      written.push_back(std::nullopt);
      continue;
    }
    const int64_t value = l.usage + t.bytes;
    written.push_back(value);
    absl::StatusOr<uint64_t> updated =
        l.no_start ? db.Execute("UPDATE user SET current_usage = ?, last_online = ?, "
                                "start_date = ? WHERE id = ?",
                                {value, now, today, t.id})
                   : db.Execute("UPDATE user SET current_usage = ?, last_online = ? WHERE id = ?",
                                {value, now, t.id});
    if (!updated.ok()) {
      db.Rollback().IgnoreError();
      return updated.status();
    }
  }
  RETURN_IF_ERROR(db.Commit());
  return written;
}

void TrafficGenerator::Record(const std::vector<Target>& targets,
                              const std::vector<std::optional<int64_t>>& written) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < targets.size() && i < written.size(); ++i) {
    if (!written[i].has_value()) continue;
    total_bytes_ += targets[i].bytes;
    per_user_[targets[i].uuid] += targets[i].bytes;
  }
}

std::string TrafficGenerator::StatusJson() const {
  absl::MutexLock lock(&mu_);
  nlohmann::json per_user = nlohmann::json::object();
  for (const auto& [uuid, bytes] : per_user_) per_user[uuid] = bytes;
  return PyDumps(nlohmann::json{
      {"enabled", enabled_}, {"total_bytes", total_bytes_}, {"per_user", per_user}});
}

}  // namespace hsync::panelsim
