#include "tests/panelsim/usage_task.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "tests/panelsim/core_render.h"
#include "tests/panelsim/db_session.h"

namespace hsync::panelsim {

void UsageTask::Start(int interval_ms) {
  if (interval_ms <= 0) return;
  task_.Start(absl::Milliseconds(interval_ms), [this] {
    absl::StatusOr<int> users = RunOnce();
    if (!users.ok()) LogWarning(absl::StrCat("usage task failed: ", users.status().message()));
  });
}

void UsageTask::Stop() { task_.Stop(); }

absl::StatusOr<int> UsageTask::RunOnce() {
  absl::MutexLock lock(&run_mu_);
  return RunLocked();
}

absl::StatusOr<int> UsageTask::RunLocked() {
  counters_.CountUsageTaskRun();
  std::map<std::string, int64_t> usage = cores_.TakeUsage();
  for (auto it = usage.begin(); it != usage.end();) {
    it = it->second > 0 ? std::next(it) : usage.erase(it);
  }
  const std::set<std::string> before_enabled = cores_.EnabledUsers();
  const absl::CivilSecond now = clock_.Now();
  const auto give_back = [&] {
    for (const auto& [uuid, bytes] : usage) cores_.ReturnUsage(uuid, bytes);
  };

  bool cores_changed = false;
  absl::StatusOr<ResetOutcome> reset = reset_job_.RunIfDue();
  if (!reset.ok()) {
    give_back();
    return reset.status();
  }
  cores_changed = reset->cores_changed;

  if (absl::Status s = adder_.Add(usage, now); !s.ok()) {
    give_back();
    return s;
  }

  // The is_active re-check, for the users with traffic in this run only.
  std::set<std::string> with_traffic;
  for (const auto& [uuid, bytes] : usage) with_traffic.insert(uuid);
  DbSession& db = DbSession::ForThisThread();
  absl::StatusOr<std::vector<UserCoreState>> states =
      ReadUserCoreStates(db, absl::CivilDay(now), with_traffic);
  if (!states.ok()) return states.status();
  std::set<std::string> found;
  for (const UserCoreState& user : *states) {
    found.insert(user.uuid);
    const bool was_enabled = before_enabled.count(user.uuid) > 0;
    if (!was_enabled && user.is_active) {
      cores_.AddClient(user.uuid);
      cores_changed = true;
    } else if (was_enabled && !user.is_active) {
      cores_.RemoveClient(user.uuid);
      cores_changed = true;
    }
  }
  // Zombies: enabled in a core, no row any more (checked only when some
  // uuid with traffic had no row, as the panel does).
  if (found.size() != with_traffic.size()) {
    std::set<std::string> check;
    for (const std::string& uuid : before_enabled) {
      if (found.count(uuid) == 0) check.insert(uuid);
    }
    absl::StatusOr<std::vector<UserCoreState>> existing =
        ReadUserCoreStates(db, absl::CivilDay(now), check);
    if (!existing.ok()) return existing.status();
    for (const UserCoreState& user : *existing) check.erase(user.uuid);
    for (const std::string& zombie : check) {
      cores_.RemoveClient(zombie);
      cores_changed = true;
    }
  }
  if (cores_changed) quick_apply_.Run();
  return static_cast<int>(usage.size());
}

}  // namespace hsync::panelsim
