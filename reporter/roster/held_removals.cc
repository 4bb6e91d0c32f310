#include "reporter/roster/held_removals.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {
namespace {

constexpr size_t kChunk = 1000;

std::string QuotedList(MariaDbConnection& conn, const std::vector<std::string>& values,
                       size_t start, size_t end) {
  std::string list;
  for (size_t i = start; i < end; ++i) {
    if (!list.empty()) list += ',';
    list += conn.Quote(values[i]);
  }
  return list;
}

}  // namespace

absl::StatusOr<std::unordered_set<std::string>> HeldRemovals::LockAll(
    MariaDbConnection& conn) const {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT uuid FROM ",
                                                         store_->Table("held_removal"),
                                                         " FOR UPDATE")));
  std::unordered_set<std::string> held;
  for (const auto& row : rs.rows) held.insert(absl::AsciiStrToLower(CellStr(row[0])));
  return held;
}

absl::Status HeldRemovals::Hold(MariaDbConnection& conn, const std::vector<std::string>& uuids,
                                uint64_t roster_version, const std::string& reason,
                                absl::Time now) const {
  if (uuids.empty()) return absl::OkStatus();
  const int64_t at = absl::ToUnixMillis(now);
  RETURN_IF_ERROR(conn.Execute(absl::StrCat("INSERT INTO ", store_->Table("held_removal_trip"),
                                            " (held_at, roster_version, reason) VALUES (", at,
                                            ", ", roster_version, ", ", conn.Quote(reason), ")"))
                      .status());
  const uint64_t trip_id = conn.LastInsertId();
  for (size_t start = 0; start < uuids.size(); start += kChunk) {
    std::string values;
    for (size_t i = start; i < std::min(uuids.size(), start + kChunk); ++i) {
      absl::StrAppend(&values, values.empty() ? "" : ",", "(", conn.Quote(uuids[i]), ",", trip_id,
                      ",", at, ")");
    }
    RETURN_IF_ERROR(conn.Execute(absl::StrCat("INSERT IGNORE INTO ", store_->Table("held_removal"),
                                              " (uuid, trip_id, held_at) VALUES ", values))
                        .status());
  }
  return absl::OkStatus();
}

absl::Status HeldRemovals::Drop(MariaDbConnection& conn,
                                const std::vector<std::string>& uuids) const {
  if (uuids.empty()) return absl::OkStatus();
  for (size_t start = 0; start < uuids.size(); start += kChunk) {
    RETURN_IF_ERROR(
        conn.Execute(absl::StrCat("DELETE FROM ", store_->Table("held_removal"), " WHERE uuid IN (",
                                  QuotedList(conn, uuids, start, std::min(uuids.size(), start + kChunk)),
                                  ")"))
            .status());
  }
  return conn
      .Execute(absl::StrCat("DELETE FROM ", store_->Table("held_removal_trip"),
                            " WHERE id NOT IN (SELECT trip_id FROM ", store_->Table("held_removal"),
                            ")"))
      .status();
}

absl::StatusOr<HeldRemovalSummary> HeldRemovals::Summary(MariaDbConnection& conn) const {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT COUNT(*), MIN(held_at), MAX(trip_id) FROM ",
                                           store_->Table("held_removal"))));
  HeldRemovalSummary summary;
  if (rs.rows.empty()) return summary;
  summary.count = CellU64(rs.rows[0][0]);
  if (summary.count == 0) return summary;
  if (rs.rows[0][1].has_value()) summary.since = absl::FromUnixMillis(CellI64(rs.rows[0][1]));
  ASSIGN_OR_RETURN(ResultSet trip,
                   conn.Query(absl::StrCat("SELECT reason FROM ", store_->Table("held_removal_trip"),
                                           " WHERE id = ", CellU64(rs.rows[0][2]))));
  if (!trip.rows.empty()) summary.reason = CellStr(trip.rows[0][0]);
  return summary;
}

absl::StatusOr<std::vector<HeldUser>> HeldRemovals::List(MariaDbConnection& conn,
                                                         const std::string& user_table) const {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT h.uuid, u.id, u.name, u.enable, h.held_at FROM ",
                                           store_->Table("held_removal"), " h LEFT JOIN ",
                                           user_table, " u ON u.uuid = h.uuid ORDER BY h.held_at, h.uuid")));
  std::vector<HeldUser> users;
  users.reserve(rs.rows.size());
  for (const auto& row : rs.rows) {
    HeldUser u;
    u.uuid = absl::AsciiStrToLower(CellStr(row[0]));
    u.exists = row[1].has_value();
    u.id = CellI64(row[1]);
    u.name = CellStr(row[2]);
    u.enabled = CellU64(row[3]) != 0;
    u.held_at = absl::FromUnixMillis(CellI64(row[4]));
    users.push_back(std::move(u));
  }
  return users;
}

void ShowHeldRemovals(const HeldRemovalSummary& summary,
                      hiddify_sync::v1::ReporterStatusReply& reply) {
  reply.set_held_removals(summary.count);
  reply.set_held_removals_reason(summary.count == 0 ? "" : summary.reason);
  if (summary.count == 0 || summary.since == absl::InfinitePast()) {
    reply.clear_held_removals_since();
  } else {
    *reply.mutable_held_removals_since() = ToProtoTimestamp(summary.since);
  }
}

}  // namespace hsync::reporter
