#include "reporter/state/state_store.h"

#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"
#include "reporter/state/core_sync_tables.h"

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

SendProgress ProgressFromRow(const std::vector<SqlCell>& row) {
  SendProgress p;
  p.stream_id = CellU64(row[0]);
  p.highest_sent_seq = CellU64(row[1]);
  p.stream_restarts = CellU64(row[2]);
  p.outbox_merges = CellU64(row[3]);
  return p;
}

constexpr char kProgressColumns[] = "stream_id, highest_sent_seq, stream_restarts, outbox_merges";
constexpr char kOutboxColumns[] = "id, stream_id, seq, HEX(payload), bytes, created_at";

// Rows selected with kOutboxColumns. HEX() keeps the binary payload intact
// through the text protocol.
std::vector<OutboxRow> OutboxRowsFrom(const ResultSet& rs) {
  std::vector<OutboxRow> rows;
  rows.reserve(rs.rows.size());
  for (const auto& r : rs.rows) {
    OutboxRow row;
    row.id = CellU64(r[0]);
    row.stream_id = CellU64(r[1]);
    row.seq = CellU64(r[2]);
    row.payload = absl::HexStringToBytes(CellStr(r[3]));
    row.bytes = CellU64(r[4]);
    row.created_at = absl::FromUnixMillis(CellI64(r[5]));
    rows.push_back(std::move(row));
  }
  return rows;
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
  RETURN_IF_ERROR(EnsureCoreSyncTables(conn, *this));

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
  RETURN_IF_ERROR(EnsureSendProgressSchema(conn));
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

absl::Status StateStore::EnsureSendProgressSchema(MariaDbConnection& conn) {
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "ALTER TABLE ", Table("watermark"),
      " ADD COLUMN IF NOT EXISTS unsubtracted_bytes BIGINT UNSIGNED NOT NULL DEFAULT 0")).status());
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", Table("send_progress"), " ("
      "id TINYINT UNSIGNED NOT NULL PRIMARY KEY, "
      "stream_id BIGINT UNSIGNED NOT NULL, "
      "highest_sent_seq BIGINT UNSIGNED NOT NULL, "
      "stream_restarts BIGINT UNSIGNED NOT NULL DEFAULT 0, "
      "outbox_merges BIGINT UNSIGNED NOT NULL DEFAULT 0"
      ") ENGINE=InnoDB")).status());
  // A state from before this table (or one whose stream changed without it):
  // whatever was written may have been sent.
  ASSIGN_OR_RETURN(StreamState meta, ReadMeta(conn));
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "INSERT INTO ", Table("send_progress"), " (id, stream_id, highest_sent_seq) VALUES (1, ",
      meta.stream_id, ", ", meta.next_seq - 1, ") ON DUPLICATE KEY UPDATE highest_sent_seq ="
      " IF(stream_id = VALUES(stream_id), highest_sent_seq, VALUES(highest_sent_seq)),"
      " stream_id = VALUES(stream_id)")).status());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SqlCell>> StateStore::OneRow(MariaDbConnection& conn,
                                                       const char* table, const char* columns,
                                                       bool for_update) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT ", columns, " FROM ", Table(table),
                                           " WHERE id = 1", for_update ? " FOR UPDATE" : "")));
  if (rs.rows.empty()) {
    return absl::NotFoundError(absl::StrCat("state table `", database_, "`.", table, " has no row"));
  }
  return std::move(rs.rows[0]);
}

absl::StatusOr<SendProgress> StateStore::ReadSendProgress(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(std::vector<SqlCell> row, OneRow(conn, "send_progress", kProgressColumns, false));
  return ProgressFromRow(row);
}

absl::StatusOr<SendProgress> StateStore::LockSendProgress(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(std::vector<SqlCell> row, OneRow(conn, "send_progress", kProgressColumns, true));
  return ProgressFromRow(row);
}

absl::StatusOr<std::optional<OutboxRow>> StateStore::ClaimOldestForSend(MariaDbConnection& conn) {
  // Only send_progress is locked (not meta): a collect merging unsent rows
  // holds it too, so the row read here is the one that leaves, and once its
  // seq is recorded no merge can change it.
  Transaction tx(conn);
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(SendProgress progress, LockSendProgress(conn));
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT ", kOutboxColumns, " FROM ",
                                                         Table("outbox"), " ORDER BY id LIMIT 1")));
  std::vector<OutboxRow> rows = OutboxRowsFrom(rs);
  if (rows.empty()) return std::optional<OutboxRow>();
  if (rows[0].stream_id == progress.stream_id && rows[0].seq > progress.highest_sent_seq) {
    RETURN_IF_ERROR(conn.Execute(absl::StrCat("UPDATE ", Table("send_progress"),
                                              " SET highest_sent_seq = ", rows[0].seq,
                                              " WHERE id = 1")).status());
  }
  RETURN_IF_ERROR(tx.Commit());
  return std::optional<OutboxRow>(std::move(rows[0]));
}

absl::StatusOr<StreamRestart> StateStore::RestartStream(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(StreamState meta, LockMeta(conn));
  RETURN_IF_ERROR(LockSendProgress(conn).status());
  StreamRestart restart;
  restart.old_stream_id = meta.stream_id;
  do {
    restart.new_stream_id = NewStreamId();
  } while (restart.new_stream_id == meta.stream_id);
  ASSIGN_OR_RETURN(std::vector<OutboxRow> rows, OutboxAbove(conn, meta.stream_id, 0));
  ASSIGN_OR_RETURN(auto move, conn.Prepare(absl::StrCat("UPDATE ", Table("outbox"),
                                                        " SET stream_id = ?, seq = ?, payload = ?"
                                                        " WHERE id = ?")));
  for (const OutboxRow& row : rows) {
    hiddify_sync::v1::UsageReport report;
    if (!report.ParseFromString(row.payload)) {
      return absl::DataLossError(absl::StrCat("outbox row stream ", row.stream_id, " seq ", row.seq,
                                              " does not parse as a UsageReport; the stream was "
                                              "not restarted"));
    }
    const uint64_t seq = ++restart.rows_moved;
    report.set_stream_id(restart.new_stream_id);
    report.set_seq(seq);
    std::string payload;
    if (!report.SerializeToString(&payload)) {
      return absl::InternalError("restarting the stream: could not serialize a UsageReport");
    }
    RETURN_IF_ERROR(move->Execute({SqlValue(restart.new_stream_id), SqlValue(seq),
                                   SqlValue(payload), SqlValue(row.id)})
                        .status());
  }
  RETURN_IF_ERROR(conn.Execute(absl::StrCat("UPDATE ", Table("meta"), " SET stream_id = ",
                                            restart.new_stream_id, ", next_seq = ",
                                            restart.rows_moved + 1,
                                            ", last_acked_seq = 0 WHERE id = 1")).status());
  RETURN_IF_ERROR(conn.Execute(absl::StrCat("UPDATE ", Table("send_progress"), " SET stream_id = ",
                                            restart.new_stream_id,
                                            ", highest_sent_seq = 0,"
                                            " stream_restarts = stream_restarts + 1 WHERE id = 1"))
                      .status());
  return restart;
}

absl::StatusOr<std::vector<OutboxRow>> StateStore::OutboxAbove(MariaDbConnection& conn,
                                                               uint64_t stream_id,
                                                               uint64_t after_seq) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT ", kOutboxColumns, " FROM ", Table("outbox"),
                                           " WHERE stream_id = ", stream_id, " AND seq > ",
                                           after_seq, " ORDER BY seq FOR UPDATE")));
  return OutboxRowsFrom(rs);
}

absl::Status StateStore::DeleteOutboxAbove(MariaDbConnection& conn, uint64_t stream_id,
                                           uint64_t after_seq) {
  return conn.Execute(absl::StrCat("DELETE FROM ", Table("outbox"), " WHERE stream_id = ",
                                   stream_id, " AND seq > ", after_seq))
      .status();
}

absl::Status StateStore::CountOutboxMerge(MariaDbConnection& conn) {
  return conn.Execute(absl::StrCat("UPDATE ", Table("send_progress"),
                                   " SET outbox_merges = outbox_merges + 1 WHERE id = 1"))
      .status();
}

absl::StatusOr<uint64_t> StateStore::OutboxRows(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT COUNT(*) FROM ", Table("outbox"))));
  return rs.rows.empty() ? 0 : CellU64(rs.rows[0][0]);
}

absl::StatusOr<StreamState> StateStore::ReadMeta(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(std::vector<SqlCell> row, OneRow(conn, "meta", kMetaColumns, false));
  return MetaFromRow(row);
}

absl::StatusOr<StreamState> StateStore::LockMeta(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(std::vector<SqlCell> row, OneRow(conn, "meta", kMetaColumns, true));
  return MetaFromRow(row);
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
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT ", kOutboxColumns, " FROM ",
                                                         Table("outbox"), " ORDER BY id LIMIT ",
                                                         limit)));
  return OutboxRowsFrom(rs);
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
