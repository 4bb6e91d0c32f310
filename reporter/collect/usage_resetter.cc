#include "reporter/collect/usage_resetter.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {

UsageResetter::UsageResetter(StateStore* store, std::string panel_database)
    : store_(store), panel_database_(std::move(panel_database)) {}

absl::Status UsageResetter::SubtractAcknowledged(
    MariaDbConnection& conn, const std::vector<hiddify_sync::v1::UsageReport>& acked) {
  std::map<std::string, uint64_t> bytes_by_uuid;
  for (const auto& report : acked) {
    for (const auto& usage : report.usages()) {
      if (usage.bytes() > 0) bytes_by_uuid[usage.uuid()] += usage.bytes();
    }
  }
  if (bytes_by_uuid.empty()) return absl::OkStatus();

  const std::string user_table = absl::StrCat("`", panel_database_, "`.`user`");
  ASSIGN_OR_RETURN(auto lower_usage,
                   conn.Prepare(absl::StrCat("UPDATE ", user_table,
                                             " SET current_usage = current_usage - ?"
                                             " WHERE uuid = ?")));
  ASSIGN_OR_RETURN(auto lower_mark,
                   conn.Prepare(absl::StrCat("UPDATE ", store_->Table("watermark"),
                                             " SET reported_bytes = reported_bytes - ?,"
                                             " unsubtracted_bytes = unsubtracted_bytes - ?"
                                             " WHERE user_id = ?")));
  constexpr size_t kChunk = 500;
  auto it = bytes_by_uuid.begin();
  while (it != bytes_by_uuid.end()) {
    std::string in_list;
    auto chunk_end = it;
    for (size_t n = 0; n < kChunk && chunk_end != bytes_by_uuid.end(); ++n, ++chunk_end) {
      if (!in_list.empty()) in_list += ',';
      in_list += conn.Quote(chunk_end->first);
    }
    // Locks the rows so the amounts we compute are the ones we change.
    ASSIGN_OR_RETURN(ResultSet rows,
                     conn.Query(absl::StrCat("SELECT u.uuid, u.current_usage, w.reported_bytes, u.id,"
                                             " w.unsubtracted_bytes, u.last_reset_time,"
                                             " w.last_reset_seen FROM ",
                                             user_table, " u JOIN ", store_->Table("watermark"),
                                             " w ON w.user_id = u.id WHERE u.uuid IN (", in_list,
                                             ") FOR UPDATE")));
    for (const auto& row : rows.rows) {
      auto found = bytes_by_uuid.find(CellStr(row[0]));
      if (found == bytes_by_uuid.end()) continue;
      const uint64_t current = CellU64(row[1]);
      const uint64_t reported = CellU64(row[2]);
      // The same test as the collector's reset detection: the counter went
      // down after the last collect, taking these acknowledged bytes with it.
      const bool reset_since_collect =
          current < reported || (row[5].has_value() && row[5] != row[6]);
      if (reset_since_collect) continue;
      const uint64_t amount = std::min({found->second, CellU64(row[4]), reported, current});
      if (amount == 0) continue;
      const int64_t signed_amount = static_cast<int64_t>(amount);
      RETURN_IF_ERROR(lower_usage->Execute({SqlValue(signed_amount), SqlValue(found->first)}).status());
      RETURN_IF_ERROR(lower_mark
                          ->Execute({SqlValue(signed_amount), SqlValue(signed_amount),
                                     SqlValue(CellI64(row[3]))})
                          .status());
    }
    it = chunk_end;
  }
  return absl::OkStatus();
}

}  // namespace hsync::reporter
