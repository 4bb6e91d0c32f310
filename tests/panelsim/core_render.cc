#include "tests/panelsim/core_render.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "tests/panelsim/user_activity.h"

namespace hsync::panelsim {

absl::StatusOr<std::vector<UserCoreState>> ReadUserCoreStates(
    DbSession& db, absl::CivilDay today, const std::optional<std::set<std::string>>& uuids) {
  std::string sql = "SELECT uuid, enable, usage_limit, current_usage, package_days, start_date "
                    "FROM user";
  if (uuids.has_value()) {
    if (uuids->empty()) return std::vector<UserCoreState>{};
    std::vector<std::string> quoted;
    for (const std::string& u : *uuids) {
      ASSIGN_OR_RETURN(std::string q, db.Quote(u));
      quoted.push_back(std::move(q));
    }
    absl::StrAppend(&sql, " WHERE uuid IN (", absl::StrJoin(quoted, ","), ")");
  }
  ASSIGN_OR_RETURN(ResultSet rs, db.QueryText(sql));
  std::vector<UserCoreState> out;
  for (const auto& row : rs.rows) {
    int64_t enable = 0, limit = 0, usage = 0, days = 0;
    if (!absl::SimpleAtoi(row[1].value_or(""), &enable) ||
        !absl::SimpleAtoi(row[2].value_or(""), &limit) ||
        !absl::SimpleAtoi(row[3].value_or(""), &usage) ||
        !absl::SimpleAtoi(row[4].value_or(""), &days)) {
      continue;
    }
    std::optional<absl::CivilDay> start;
    if (row[5].has_value()) {
      absl::StatusOr<absl::CivilDay> parsed = ParsePanelDate(*row[5]);
      if (parsed.ok()) start = *parsed;
    }
    UserCoreState state;
    state.uuid = absl::AsciiStrToLower(row[0].value_or(""));
    state.is_active = IsActive(enable != 0, limit, usage, days, start, today);
    state.rendered = state.is_active && limit > usage;
    out.push_back(std::move(state));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> RenderCoreUsers(DbSession& db, absl::CivilDay today) {
  ASSIGN_OR_RETURN(std::vector<UserCoreState> states, ReadUserCoreStates(db, today, std::nullopt));
  std::vector<std::string> out;
  for (const UserCoreState& s : states) {
    if (s.rendered) out.push_back(s.uuid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hsync::panelsim
