#include "tests/panelsim/usage_adder.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/shutdown_signal.h"

namespace hsync::panelsim {

absl::Status AtomicUsageAdder::Add(const std::map<std::string, int64_t>& bytes,
                                   absl::CivilSecond now) {
  if (bytes.empty()) return absl::OkStatus();
  nlohmann::json payload = nlohmann::json::array();
  for (const auto& [uuid, b] : bytes) payload.push_back({{"uuid", uuid}, {"usage", b}});
  return DbSession::ForThisThread()
      .Execute("CALL add_usage_json(?, ?)", {payload.dump(), FormatPanelDateTime(now)})
      .status();
}

absl::Status ReadModifyWriteUsageAdder::Add(const std::map<std::string, int64_t>& bytes,
                                            absl::CivilSecond now) {
  if (bytes.empty()) return absl::OkStatus();
  DbSession& db = DbSession::ForThisThread();
  std::vector<std::string> quoted;
  for (const auto& [uuid, b] : bytes) {
    ASSIGN_OR_RETURN(std::string q, db.Quote(uuid));
    quoted.push_back(q);
  }
  // The load (SQLAlchemy reads the rows) ...
  ASSIGN_OR_RETURN(ResultSet rs,
                   db.QueryText(absl::StrCat("SELECT id, uuid, current_usage FROM user WHERE uuid IN (",
                                             absl::StrJoin(quoted, ","), ")")));
  // ... the gap in which other writers' changes get lost ...
  SleepUnlessStopping(absl::Milliseconds(gap_ms_));
  // ... and the write of absolute values.
  const std::string now_text = FormatPanelDateTime(now);
  const std::string today = FormatPanelDate(absl::CivilDay(now));
  RETURN_IF_ERROR(db.Begin());
  for (const auto& row : rs.rows) {
    int64_t id = 0, usage = 0;
    if (!absl::SimpleAtoi(row[0].value_or(""), &id) ||
        !absl::SimpleAtoi(row[2].value_or(""), &usage)) {
      continue;
    }
    auto it = bytes.find(absl::AsciiStrToLower(row[1].value_or("")));
    if (it == bytes.end()) continue;
    absl::Status s = db.Execute("UPDATE user SET current_usage = ?, last_online = ?, "
                                "start_date = IFNULL(start_date, ?) WHERE id = ?",
                                {usage + it->second, now_text, today, id})
                         .status();
    if (!s.ok()) {
      db.Rollback().IgnoreError();
      return s;
    }
  }
  return db.Commit();
}

std::unique_ptr<UsageAdder> MakeUsageAdder(PanelGeneration generation, int rmw_gap_ms) {
  if (HasAddUsageJson(generation)) return std::make_unique<AtomicUsageAdder>();
  return std::make_unique<ReadModifyWriteUsageAdder>(rmw_gap_ms);
}

}  // namespace hsync::panelsim
