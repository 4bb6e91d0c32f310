#include "tests/panelsim/reset_job.h"

#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/user_activity.h"
#include "tests/panelsim/user_store.h"

namespace hsync::panelsim {

bool ResetJob::Due(const std::optional<absl::CivilSecond>& last, absl::CivilSecond now) {
  if (!last.has_value()) return true;
  const int64_t elapsed = now - *last;
  if (elapsed < 6 * 3600) return false;
  if (now.hour() > 5 && elapsed < 24 * 3600) return false;
  return true;
}

absl::StatusOr<ResetOutcome> ResetJob::RunIfDue() {
  const absl::CivilSecond now = clock_.Now();
  {
    absl::MutexLock lock(&mu_);
    if (!Due(last_check_, now)) return ResetOutcome{};
  }
  return RunAt(now);
}

absl::StatusOr<ResetOutcome> ResetJob::RunNow() { return RunAt(clock_.Now()); }

absl::StatusOr<ResetOutcome> ResetJob::RunAt(absl::CivilSecond now) {
  const absl::CivilDay today(now);
  DbSession& db = DbSession::ForThisThread();
  static const std::string sql = absl::StrCat(
      "SELECT ", UserStore::UserColumnsSql(),
      " FROM user u LEFT JOIN admin_user a ON a.id = u.added_by WHERE u.start_date IS NOT NULL "
      "ORDER BY u.id");
  ASSIGN_OR_RETURN(ResultSet rs, db.Query(sql));
  ResetOutcome outcome;
  outcome.ran = true;
  std::vector<UserRecord> users;
  for (size_t i = 0; i < rs.rows.size(); ++i) {
    ASSIGN_OR_RETURN(UserRecord user, UserStore::ParseUserRow(rs, i));
    users.push_back(std::move(user));
  }
  // The resets (one commit for all, as the panel does).
  std::vector<UserRecord*> activated;
  RETURN_IF_ERROR(db.Begin());
  for (UserRecord& user : users) {
    if (!PeriodicResetDue(user, today)) continue;  // mode, start date, days left, user_should_reset
    const bool was_active = IsActive(user, today);
    absl::Status s = db.Execute("UPDATE user SET current_usage = 0, last_reset_time = ? WHERE id = ?",
                                {FormatPanelDate(today), user.id})
                         .status();
    if (!s.ok()) {
      db.Rollback().IgnoreError();
      return s;
    }
    user.current_usage = 0;
    user.last_reset_time = today;
    ++outcome.reset;
    if (!was_active && IsActive(user, today)) activated.push_back(&user);
  }
  RETURN_IF_ERROR(db.Commit());
  for (UserRecord* user : activated) {
    cores_.AddClient(user->uuid);
    outcome.cores_changed = true;
  }
  // Users whose package ended: removed from the cores when inactive.
  for (const UserRecord& user : users) {
    if (*user.start_date + user.package_days >= today) continue;
    if (IsActive(user, today)) continue;
    cores_.RemoveClient(user.uuid);
    outcome.cores_changed = true;
  }
  absl::MutexLock lock(&mu_);
  last_check_ = now;
  return outcome;
}

}  // namespace hsync::panelsim
