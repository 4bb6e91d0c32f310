#include "hub/journal/journal_schema.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hsync::hub {
namespace {

// Times are unix microseconds (INTEGER); NULL = unknown. uint64 values are
// stored bit-for-bit in INTEGER (see ToSqlInt).
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per reporter stream: the highest durably accepted seq (dedup key).
CREATE TABLE IF NOT EXISTS streams(
  node_id TEXT NOT NULL,
  stream_id INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  reports INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  last_report_at INTEGER NOT NULL,
  PRIMARY KEY(node_id, stream_id)
) WITHOUT ROWID;

-- Bytes accepted but not yet written to the parent, summed over all nodes.
-- A row exists only while bytes > 0.
CREATE TABLE IF NOT EXISTS pending(
  uuid TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL,
  last_online INTEGER,
  first_pending_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Raw reports, for audit (pruned by age, and oldest first by size).
CREATE TABLE IF NOT EXISTS reports(
  id INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL,
  stream_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  payload BLOB NOT NULL
);

-- What each accepted report contained (ReportContentHash), to tell a resend
-- from a rolled-back reporter reusing the seq. Pruned by age, never below the
-- last few of each stream; outlives the audit rows (small).
CREATE TABLE IF NOT EXISTS report_hashes(
  node_id TEXT NOT NULL,
  stream_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY(node_id, stream_id, seq)
) WITHOUT ROWID;

-- At most one open PATCH intent per user (ARCHITECTURE.md "Exactly once" 4).
CREATE TABLE IF NOT EXISTS intents(
  uuid TEXT PRIMARY KEY,
  value_read INTEGER NOT NULL,
  value_written INTEGER NOT NULL,
  bytes_applied INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Batches of the database writer, recorded before the parent's transaction
-- and removed with the pending subtraction after it (ARCHITECTURE.md
-- "Exactly once" 4): an open batch after a crash is decided by whether its id
-- is in the parent's database. A user is in at most one open batch.
CREATE TABLE IF NOT EXISTS batches(
  id INTEGER PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_users(
  uuid TEXT PRIMARY KEY,
  batch_id INTEGER NOT NULL,
  bytes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batch_users_by_batch ON batch_users(batch_id);

-- Users the parent does not know, with the bytes given up for them.
CREATE TABLE IF NOT EXISTS orphans(
  uuid TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Running totals: applied_bytes, orphaned_bytes, reports_kept, audit_bytes
-- (sum of the kept reports' payload sizes).
CREATE TABLE IF NOT EXISTS counters(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

}  // namespace

absl::Status ConfigureJournalConnection(SqliteDb& db) {
  ASSIGN_OR_RETURN(std::string mode, db.QueryText("PRAGMA journal_mode=WAL"));
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("journal: cannot switch to WAL mode (got '", mode, "')"));
  }
  // FULL: a commit is on disk (WAL fsynced) before COMMIT returns.
  RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA cache_size=-32768"));       // 32 MiB page cache
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_size_limit=67108864"));  // shrink WAL to 64 MiB
  RETURN_IF_ERROR(db.Exec("PRAGMA temp_store=MEMORY"));
  return absl::OkStatus();
}

absl::Status CreateJournalSchema(SqliteDb& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  auto create = [&db]() -> absl::Status {
    // Tables added by later versions are created here too (IF NOT EXISTS),
    // so a migration only fills in what older versions did not keep.
    RETURN_IF_ERROR(db.Exec(kSchema));
    ASSIGN_OR_RETURN(SqliteStatement select,
                     db.Prepare("SELECT value FROM meta WHERE key = 'schema_version'"));
    ASSIGN_OR_RETURN(bool found, select.Step());
    if (!found) {  // a new journal
      return db.Exec(absl::StrCat("INSERT INTO meta(key, value) VALUES('schema_version', '",
                                  kJournalSchemaVersion, "')"));
    }
    const std::string version = select.ColumnText(0);
    select.Reset();
    int parsed = 0;
    if (!absl::SimpleAtoi(version, &parsed) || parsed < 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("journal: schema version '", version, "' is not a version number"));
    }
    if (parsed > kJournalSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "journal: schema version '", version, "' is newer than this hub understands (",
          kJournalSchemaVersion, ")"));
    }
    if (parsed < 2) {
      // Version 1 kept no payload-size total: count what the audit holds now.
      // (Its reports have no content hash; a resend of them is a plain duplicate.)
      RETURN_IF_ERROR(db.Exec(
          "INSERT OR REPLACE INTO counters(name, value) "
          "SELECT 'audit_bytes', coalesce(sum(length(payload)), 0) FROM reports"));
    }
    if (parsed < kJournalSchemaVersion) {
      return db.Exec(absl::StrCat("UPDATE meta SET value = '", kJournalSchemaVersion,
                                  "' WHERE key = 'schema_version'"));
    }
    return absl::OkStatus();
  };
  if (absl::Status status = create(); !status.ok()) {
    (void)db.Exec("ROLLBACK");
    return status;
  }
  return db.Exec("COMMIT");
}

}  // namespace hsync::hub
