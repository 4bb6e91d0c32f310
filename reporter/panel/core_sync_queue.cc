#include "reporter/panel/core_sync_queue.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {
namespace {

const char* ActionName(CoreAction action) {
  return action == CoreAction::kDelete ? "delete" : "sync";
}

}  // namespace

CoreSyncQueue::CoreSyncQueue(StateStore* store, std::string panel_database)
    : store_(store), panel_database_(std::move(panel_database)) {}

absl::Status CoreSyncQueue::Record(MariaDbConnection& conn, const std::vector<CoreChange>& changes,
                                   absl::Time now) const {
  constexpr size_t kBatch = 500;
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (size_t start = 0; start < changes.size(); start += kBatch) {
    std::string values;
    for (size_t i = start; i < std::min(changes.size(), start + kBatch); ++i) {
      const CoreChange& c = changes[i];
      absl::StrAppend(&values, values.empty() ? "" : ",", "(", conn.Quote(c.uuid), ",'",
                      ActionName(c.action), "',", c.needs_apply ? 1 : 0, ",1,", now_ms, ",0,0)");
    }
    RETURN_IF_ERROR(conn.Execute(absl::StrCat(
        "INSERT INTO ", store_->Table("core_sync"),
        " (uuid, action, needs_apply, version, queued_at, attempts, next_try_at) VALUES ", values,
        " ON DUPLICATE KEY UPDATE action = VALUES(action),"
        " needs_apply = GREATEST(needs_apply, VALUES(needs_apply)), version = version + 1,"
        " attempts = 0, next_try_at = 0")).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unordered_set<std::string>> CoreSyncQueue::PendingDeletes(
    MariaDbConnection& conn) const {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT uuid FROM ",
                                                         store_->Table("core_sync"),
                                                         " WHERE action = 'delete' FOR UPDATE")));
  std::unordered_set<std::string> uuids;
  for (const auto& row : rs.rows) uuids.insert(CellStr(row[0]));
  return uuids;
}

absl::StatusOr<std::vector<CoreSyncRow>> CoreSyncQueue::Due(MariaDbConnection& conn,
                                                            absl::Time now, size_t limit) const {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat(
                       "SELECT uuid, action, needs_apply, version, attempts, queued_at FROM ",
                       store_->Table("core_sync"), " WHERE next_try_at <= ",
                       absl::ToUnixMillis(now), " ORDER BY next_try_at, queued_at LIMIT ", limit)));
  std::vector<CoreSyncRow> rows;
  for (const auto& r : rs.rows) {
    CoreSyncRow row;
    row.uuid = CellStr(r[0]);
    row.action = CellStr(r[1]) == "delete" ? CoreAction::kDelete : CoreAction::kSync;
    row.needs_apply = CellU64(r[2]) != 0;
    row.version = CellU64(r[3]);
    row.attempts = static_cast<uint32_t>(CellU64(r[4]));
    row.queued_at = absl::FromUnixMillis(CellI64(r[5]));
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<absl::Time> CoreSyncQueue::NextDue(MariaDbConnection& conn) const {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT MIN(next_try_at) FROM ",
                                                         store_->Table("core_sync"))));
  if (rs.rows.empty() || !rs.rows[0][0].has_value()) return absl::InfiniteFuture();
  return absl::FromUnixMillis(CellI64(rs.rows[0][0]));
}

absl::StatusOr<bool> CoreSyncQueue::Complete(MariaDbConnection& conn, const CoreSyncRow& row) const {
  Transaction tx(conn);
  RETURN_IF_ERROR(tx.status());
  if (row.action == CoreAction::kDelete) {
    // Watermark writers serialize on meta (state_store.h).
    RETURN_IF_ERROR(store_->LockMeta(conn).status());
  }
  ASSIGN_OR_RETURN(uint64_t deleted,
                   conn.Execute(absl::StrCat("DELETE FROM ", store_->Table("core_sync"),
                                             " WHERE uuid = ", conn.Quote(row.uuid),
                                             " AND version = ", row.version)));
  if (deleted == 0) {
    RETURN_IF_ERROR(tx.Commit());
    return false;
  }
  if (row.needs_apply) {
    RETURN_IF_ERROR(conn.Execute(absl::StrCat("UPDATE ", store_->Table("core_apply"),
                                              " SET wanted_generation = wanted_generation + 1"
                                              " WHERE id = 1")).status());
  }
  if (row.action == CoreAction::kDelete) {
    RETURN_IF_ERROR(conn.Execute(absl::StrCat(
        "DELETE FROM ", store_->Table("watermark"), " WHERE uuid = ", conn.Quote(row.uuid),
        " AND user_id NOT IN (SELECT id FROM `", panel_database_, "`.`user`)")).status());
  }
  RETURN_IF_ERROR(tx.Commit());
  return true;
}

absl::Status CoreSyncQueue::Postpone(MariaDbConnection& conn, const CoreSyncRow& row,
                                     absl::Time next_try, const std::string& error) const {
  return conn
      .Execute(absl::StrCat("UPDATE ", store_->Table("core_sync"),
                            " SET attempts = attempts + 1, next_try_at = ",
                            absl::ToUnixMillis(next_try), ", last_error = ",
                            conn.Quote(error.substr(0, 500)), " WHERE uuid = ",
                            conn.Quote(row.uuid), " AND version = ", row.version))
      .status();
}

absl::StatusOr<CoreSyncStats> CoreSyncQueue::Stats(MariaDbConnection& conn) const {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT COUNT(*), MIN(queued_at) FROM ",
                                                         store_->Table("core_sync"))));
  CoreSyncStats stats;
  if (!rs.rows.empty()) {
    stats.pending = CellU64(rs.rows[0][0]);
    if (rs.rows[0][1].has_value()) stats.oldest_at = absl::FromUnixMillis(CellI64(rs.rows[0][1]));
  }
  return stats;
}

absl::StatusOr<ApplyGenerations> CoreSyncQueue::ReadApply(MariaDbConnection& conn) const {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT wanted_generation, done_generation FROM ",
                                           store_->Table("core_apply"), " WHERE id = 1")));
  ApplyGenerations g;
  if (!rs.rows.empty()) {
    g.wanted = CellU64(rs.rows[0][0]);
    g.done = CellU64(rs.rows[0][1]);
  }
  return g;
}

absl::Status CoreSyncQueue::MarkApplied(MariaDbConnection& conn, uint64_t generation) const {
  return conn
      .Execute(absl::StrCat("UPDATE ", store_->Table("core_apply"),
                            " SET done_generation = GREATEST(done_generation, ", generation,
                            ") WHERE id = 1"))
      .status();
}

absl::StatusOr<bool> CoreSyncQueue::UserRowExists(MariaDbConnection& conn,
                                                  const std::string& uuid) const {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT 1 FROM `", panel_database_,
                                                         "`.`user` WHERE uuid = ",
                                                         conn.Quote(uuid), " LIMIT 1")));
  return !rs.rows.empty();
}

}  // namespace hsync::reporter
