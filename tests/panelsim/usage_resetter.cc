#include "tests/panelsim/usage_resetter.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/user_activity.h"
#include "tests/panelsim/user_store.h"

namespace hsync::panelsim {

void UsageResetter::Start(int interval_ms) {
  if (interval_ms <= 0) return;
  task_.Start(absl::Milliseconds(interval_ms), [this] {
    absl::StatusOr<int> count = ResetDue();
    if (!count.ok()) {
      LogWarning(absl::StrCat("periodic reset failed: ", count.status().message()));
    } else if (*count > 0) {
      LogInfo(absl::StrCat("periodic reset: ", *count, " user(s) reset"));
    }
  });
}

void UsageResetter::Stop() { task_.Stop(); }

absl::StatusOr<int> UsageResetter::ResetDue() {
  DbSession& db = DbSession::ForThisThread();
  static const std::string sql =
      absl::StrCat("SELECT ", UserStore::UserColumnsSql(),
                   " FROM user u LEFT JOIN admin_user a ON a.id = u.added_by "
                   "WHERE u.mode <> 'no_reset' AND u.start_date IS NOT NULL ORDER BY u.id");
  ASSIGN_OR_RETURN(ResultSet rs, db.Query(sql));
  const absl::CivilDay today = clock_.Today();
  int count = 0;
  for (size_t i = 0; i < rs.rows.size(); ++i) {
    ASSIGN_OR_RETURN(UserRecord user, UserStore::ParseUserRow(rs, i));
    if (!PeriodicResetDue(user, today)) continue;
    RETURN_IF_ERROR(db.Execute("UPDATE user SET current_usage = 0, last_reset_time = ? WHERE id = ?",
                               {FormatPanelDate(today), user.id})
                        .status());
    ++count;
  }
  return count;
}

absl::Status UsageResetter::ResetUser(const std::string& uuid) {
  DbSession& db = DbSession::ForThisThread();
  ASSIGN_OR_RETURN(ResultSet rs, db.Query("SELECT id FROM user WHERE uuid = ?", {uuid}));
  if (rs.rows.empty()) return absl::NotFoundError(absl::StrCat("no user ", uuid));
  return db.Execute("UPDATE user SET current_usage = 0, last_reset_time = ? WHERE uuid = ?",
                    {FormatPanelDate(clock_.Today()), uuid})
      .status();
}

}  // namespace hsync::panelsim
