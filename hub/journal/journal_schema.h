// The journal's SQLite schema and connection settings (WAL, synchronous=FULL).
#pragma once

#include "absl/status/status.h"
#include "hub/journal/journal_sqlite.h"

namespace hsync::hub {

// Current schema version, stored in table meta; a journal written by a newer
// version is refused rather than misread, an older one is migrated at open.
//   1: first version
//   2: report_hashes (rollback detection), counter audit_bytes (audit size limit)
// 3: apply batches (database writer); an older hub would not see an open
// batch and could apply its bytes twice, so it refuses this journal.
inline constexpr int kJournalSchemaVersion = 3;

// Per-connection settings: WAL (checked), synchronous=FULL, busy timeout
// (already set at open), page cache size.
absl::Status ConfigureJournalConnection(SqliteDb& db);

// Creates the tables if missing (idempotent), checks the schema version and
// migrates an older journal to the current one, all in one transaction.
absl::Status CreateJournalSchema(SqliteDb& db);

}  // namespace hsync::hub
