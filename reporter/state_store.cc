#include "reporter/state_store.h"

#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "reporter/sql_values.h"

namespace hsync::reporter {
namespace {

uint64_t NewStreamId() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) ^ uint64_t{rd()};
  return id;
}

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

StreamState MetaFromRow(const std::vector<SqlCell>& row) {
  StreamState s;
  s.stream_id = CellU64(row[0]);
  s.next_seq = CellU64(row[1], 1);
  s.last_acked_seq = CellU64(row[2]);
  s.baseline_pending = CellU64(row[3]) != 0;
  return s;
}

constexpr char kMetaColumns[] = "stream_id, next_seq, last_acked_seq, baseline_pending, schema_version";

}  // namespace

StateStore::StateStore(std::string state_database, bool baseline_existing_usage)
    : database_(std::move(state_database)), baseline_existing_usage_(baseline_existing_usage) {}

std::string StateStore::Table(std::string_view table) const {
  return absl::StrCat("`", database_, "`.`", std::string(table), "`");
}

absl::StatusOr<StreamState> StateStore::EnsureSchema(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(ResultSet existing,
                   conn.Query(absl::StrCat("SELECT TABLE_NAME FROM information_schema.TABLES "
                                           "WHERE TABLE_SCHEMA = ",
                                           conn.Quote(database_))));
  bool had_watermark = false;
  for (const auto& row : existing.rows) {
    if (CellStr(row[0]) == "watermark") had_watermark = true;
  }
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE DATABASE IF NOT EXISTS `", database_,
      "` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")).status());
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", Table("meta"), " ("
      "id TINYINT UNSIGNED NOT NULL PRIMARY KEY, "
      "schema_version INT NOT NULL, "
      "stream_id BIGINT UNSIGNED NOT NULL, "
      "next_seq BIGINT UNSIGNED NOT NULL, "
      "last_acked_seq BIGINT UNSIGNED NOT NULL, "
      "baseline_pending TINYINT(1) NOT NULL, "
      "created_at BIGINT NOT NULL"
      ") ENGINE=InnoDB")).status());
  // Keyed by the panel's user.id, so collect merges two primary-key scans;
  // uuid guards against a reused id.
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", Table("watermark"), " ("
      "user_id INT NOT NULL PRIMARY KEY, "
      "uuid VARCHAR(36) NOT NULL, "
      "reported_bytes BIGINT UNSIGNED NOT NULL, "
      "last_online_reported DATETIME NULL, "
      "last_reset_seen DATE NULL"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci")).status());
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", Table("outbox"), " ("
      "id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
      "stream_id BIGINT UNSIGNED NOT NULL, "
      "seq BIGINT UNSIGNED NOT NULL, "
      "payload MEDIUMBLOB NOT NULL, "
      "bytes BIGINT UNSIGNED NOT NULL, "
      "created_at BIGINT NOT NULL, "
      "UNIQUE KEY stream_seq (stream_id, seq)"
      ") ENGINE=InnoDB")).status());

  RETURN_IF_ERROR(EnsureHeldRemovalTables(conn));

  ASSIGN_OR_RETURN(ResultSet meta,
                   conn.Query(absl::StrCat("SELECT ", kMetaColumns, " FROM ", Table("meta"),
                                           " WHERE id = 1")));
  if (meta.rows.empty()) {
    uint64_t stream_id = NewStreamId();
    RETURN_IF_ERROR(conn.Execute(absl::StrCat(
        "INSERT IGNORE INTO ", Table("meta"),
        " (id, schema_version, stream_id, next_seq, last_acked_seq, baseline_pending, created_at)"
        " VALUES (1, ", kStateSchemaVersion, ", ", stream_id, ", 1, 0, ",
        baseline_existing_usage_ ? 1 : 0, ", ", NowMillis(), ")")).status());
    LogInfo(absl::StrCat("state: new stream ", stream_id, " in schema `", database_, "`",
                         baseline_existing_usage_ ? " (existing usage will be baselined)" : ""));
  } else {
    int64_t version = CellI64(meta.rows[0][4]);
    if (version > kStateSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state schema `", database_, "` has version ", version,
          ", newer than this reporter understands (", kStateSchemaVersion, ")"));
    }
    // Future migrations go here: if (version < 2) { ALTER ...; }
    if (version < kStateSchemaVersion) {
      RETURN_IF_ERROR(conn.Execute(absl::StrCat("UPDATE ", Table("meta"), " SET schema_version = ",
                                                kStateSchemaVersion, " WHERE id = 1")).status());
    }
    if (!had_watermark) {
      // The stream survives, but what was reported is unknown: treat it like a
      // fresh install rather than re-reporting every user's whole usage.
      LogWarning(absl::StrCat("state: table `", database_,
                              "`.watermark was missing and has been recreated"));
      RETURN_IF_ERROR(conn.Execute(absl::StrCat("UPDATE ", Table("meta"),
                                                " SET baseline_pending = ",
                                                baseline_existing_usage_ ? 1 : 0, " WHERE id = 1"))
                          .status());
    }
  }
  return ReadMeta(conn);
}

absl::Status StateStore::EnsureHeldRemovalTables(MariaDbConnection& conn) {
  // Additive: created on every start if missing, so a state schema made by an
  // earlier version gains them without a schema_version bump (and an earlier
  // reporter started on this schema simply ignores them).
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", Table("held_removal_trip"), " ("
      "id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
      "held_at BIGINT NOT NULL, "
      "roster_version BIGINT UNSIGNED NOT NULL, "
      "reason TEXT NOT NULL"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci")).status());
  return conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", Table("held_removal"), " ("
      "uuid VARCHAR(36) NOT NULL PRIMARY KEY, "
      "trip_id BIGINT UNSIGNED NOT NULL, "
      "held_at BIGINT NOT NULL, "
      "KEY trip (trip_id)"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci")).status();
}

absl::StatusOr<StreamState> StateStore::ReadMeta(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT ", kMetaColumns, " FROM ",
                                                         Table("meta"), " WHERE id = 1")));
  if (rs.rows.empty()) {
    return absl::NotFoundError(absl::StrCat("state table `", database_, "`.meta has no row"));
  }
  return MetaFromRow(rs.rows[0]);
}

absl::StatusOr<StreamState> StateStore::LockMeta(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT ", kMetaColumns, " FROM ",
                                                         Table("meta"),
                                                         " WHERE id = 1 FOR UPDATE")));
  if (rs.rows.empty()) {
    return absl::NotFoundError(absl::StrCat("state table `", database_, "`.meta has no row"));
  }
  return MetaFromRow(rs.rows[0]);
}

absl::Status StateStore::SetNextSeq(MariaDbConnection& conn, uint64_t next_seq) {
  return conn.Execute(absl::StrCat("UPDATE ", Table("meta"), " SET next_seq = ", next_seq,
                                   " WHERE id = 1"))
      .status();
}

absl::Status StateStore::ClearBaselinePending(MariaDbConnection& conn) {
  return conn.Execute(absl::StrCat("UPDATE ", Table("meta"),
                                   " SET baseline_pending = 0 WHERE id = 1"))
      .status();
}

absl::Status StateStore::AppendOutbox(MariaDbConnection& conn, const OutboxRow& row) {
  ASSIGN_OR_RETURN(auto stmt, conn.Prepare(absl::StrCat(
                                  "INSERT INTO ", Table("outbox"),
                                  " (stream_id, seq, payload, bytes, created_at)"
                                  " VALUES (?, ?, ?, ?, ?)")));
  return stmt
      ->Execute({SqlValue(row.stream_id), SqlValue(row.seq), SqlValue(row.payload),
                 SqlValue(row.bytes), SqlValue(int64_t{absl::ToUnixMillis(row.created_at)})})
      .status();
}

absl::StatusOr<std::vector<OutboxRow>> StateStore::OldestOutbox(MariaDbConnection& conn,
                                                                size_t limit) {
  // HEX() keeps the binary payload intact through the text protocol.
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT stream_id, seq, HEX(payload), bytes, created_at"
                                           " FROM ", Table("outbox"), " ORDER BY id LIMIT ",
                                           limit)));
  std::vector<OutboxRow> rows;
  rows.reserve(rs.rows.size());
  for (const auto& r : rs.rows) {
    OutboxRow row;
    row.stream_id = CellU64(r[0]);
    row.seq = CellU64(r[1]);
    row.payload = absl::HexStringToBytes(CellStr(r[2]));
    row.bytes = CellU64(r[3]);
    row.created_at = absl::FromUnixMillis(CellI64(r[4]));
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<uint64_t> StateStore::DeleteAcked(MariaDbConnection& conn, uint64_t stream_id,
                                                 uint64_t acked_seq) {
  ASSIGN_OR_RETURN(uint64_t deleted,
                   conn.Execute(absl::StrCat("DELETE FROM ", Table("outbox"),
                                             " WHERE stream_id = ", stream_id,
                                             " AND seq <= ", acked_seq)));
  RETURN_IF_ERROR(conn.Execute(absl::StrCat("UPDATE ", Table("meta"),
                                            " SET last_acked_seq = GREATEST(last_acked_seq, ",
                                            acked_seq, ") WHERE id = 1 AND stream_id = ",
                                            stream_id)).status());
  return deleted;
}

absl::StatusOr<OutboxStats> StateStore::Stats(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT COUNT(*), COALESCE(SUM(bytes), 0), "
                                           "MIN(created_at) FROM ", Table("outbox"))));
  OutboxStats stats;
  if (!rs.rows.empty()) {
    stats.reports = CellU64(rs.rows[0][0]);
    stats.bytes = CellU64(rs.rows[0][1]);
    if (rs.rows[0][2].has_value()) stats.oldest_at = absl::FromUnixMillis(CellI64(rs.rows[0][2]));
  }
  return stats;
}

}  // namespace hsync::reporter
