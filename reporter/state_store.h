// The reporter's own state in the child's MariaDB, in a schema of its own
// (default `hiddify_sync`), created and migrated here:
//   meta       one row: schema version, stream_id (random, created once with
//              the state), next seq, last acknowledged seq, baseline flag;
//   watermark  per user (keyed by the panel's user.id, with its uuid): bytes
//              already reported (since the last reset seen),
//              last_online already reported, last_reset_time seen;
//   outbox     serialized UsageReports written but not yet acknowledged;
//   held_removal, held_removal_trip
//              removals the mass-removal guard held back (HeldRemovals).
// Every function works on the caller's connection and inside the caller's
// transaction, if any. Writers of `watermark` serialize on LockMeta().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mariadb.h"

namespace hsync::reporter {

inline constexpr int kStateSchemaVersion = 1;

struct StreamState {
  uint64_t stream_id = 0;
  uint64_t next_seq = 1;        // seq of the next report written
  uint64_t last_acked_seq = 0;  // highest seq the hub acknowledged
  bool baseline_pending = false;
};

struct OutboxRow {
  uint64_t stream_id = 0;
  uint64_t seq = 0;
  std::string payload;  // serialized hiddify_sync.v1.UsageReport
  uint64_t bytes = 0;
  absl::Time created_at;
};

struct OutboxStats {
  uint64_t reports = 0;
  uint64_t bytes = 0;
  absl::Time oldest_at = absl::InfinitePast();  // InfinitePast when empty
};

class StateStore {
 public:
  // `baseline_existing_usage`: whether a fresh watermark table starts with the
  // baseline flag set (see Collector).
  StateStore(std::string state_database, bool baseline_existing_usage);

  // Creates the schema and tables if missing, migrates older versions. A
  // missing meta row (first start, or the state was lost) creates a new random
  // stream_id with seq starting at 1. Must run outside a transaction (DDL).
  absl::StatusOr<StreamState> EnsureSchema(MariaDbConnection& conn);

  // Reads the meta row with SELECT ... FOR UPDATE: call first inside a
  // transaction that writes watermarks or the outbox; it serializes those
  // transactions (collect, roster apply, reset-mode subtraction).
  absl::StatusOr<StreamState> LockMeta(MariaDbConnection& conn);
  absl::StatusOr<StreamState> ReadMeta(MariaDbConnection& conn);

  absl::Status SetNextSeq(MariaDbConnection& conn, uint64_t next_seq);
  absl::Status ClearBaselinePending(MariaDbConnection& conn);

  absl::Status AppendOutbox(MariaDbConnection& conn, const OutboxRow& row);
  // Up to `limit` rows in (stream, seq) write order.
  absl::StatusOr<std::vector<OutboxRow>> OldestOutbox(MariaDbConnection& conn, size_t limit);
  // Deletes the rows of `stream_id` with seq <= acked_seq and records the
  // acknowledged seq. Returns the number of rows deleted.
  absl::StatusOr<uint64_t> DeleteAcked(MariaDbConnection& conn, uint64_t stream_id,
                                       uint64_t acked_seq);
  absl::StatusOr<OutboxStats> Stats(MariaDbConnection& conn);

  // "`<state_database>`.`<table>`", for queries written elsewhere.
  std::string Table(std::string_view table) const;
  const std::string& database() const { return database_; }

 private:
  // The tables of HeldRemovals (held_removals.h).
  absl::Status EnsureHeldRemovalTables(MariaDbConnection& conn);

  std::string database_;
  bool baseline_existing_usage_;
};

}  // namespace hsync::reporter
