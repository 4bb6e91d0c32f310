// The journal's SQLite schema and connection settings (WAL, synchronous=FULL).
#pragma once

#include "absl/status/status.h"
#include "hub/journal_sqlite.h"

namespace hsync::hub {

// Current schema version, stored in table meta; a journal written by a newer
// version is refused rather than misread.
inline constexpr int kJournalSchemaVersion = 1;

// Per-connection settings: WAL (checked), synchronous=FULL, busy timeout
// (already set at open), page cache size.
absl::Status ConfigureJournalConnection(SqliteDb& db);

// Creates the tables if missing (idempotent) and checks the schema version.
absl::Status CreateJournalSchema(SqliteDb& db);

}  // namespace hsync::hub
