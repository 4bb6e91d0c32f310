// The reporter's own state in the child's MariaDB, in a schema of its own
// (default `hiddify_sync`), created and migrated here:
//   meta       one row: schema version, stream_id (random, created once with
//              the state), next seq, last acknowledged seq, baseline flag;
//   watermark  per user (keyed by the panel's user.id, with its uuid): bytes
//              already reported (since the last reset seen),
//              last_online already reported, last_reset_time seen, and
//              (usage_mode = "reset") bytes reported since the last reset
//              seen that were not yet subtracted from current_usage;
//   outbox     serialized UsageReports written but not yet acknowledged;
//   held_removal, held_removal_trip
//              removals the mass-removal guard held back (HeldRemovals).
//   core_sync, core_apply
//              users whose proxy cores must follow, apply runs wanted
//              (core_sync_tables.h).
//   send_progress  one row (EnsureSendProgressSchema): the highest seq of the
//              current stream ever handed to the hub (rows up to it are frozen:
//              never merged, deleted only after an ack), stream restarts and
//              outbox merges so far.
// Every function works on the caller's connection and inside the caller's
// transaction, if any. Writers of `watermark` serialize on LockMeta().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mariadb.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {

inline constexpr int kStateSchemaVersion = 1;

struct StreamState {
  uint64_t stream_id = 0;
  uint64_t next_seq = 1;        // seq of the next report written
  uint64_t last_acked_seq = 0;  // highest seq the hub acknowledged
  bool baseline_pending = false;
};

struct OutboxRow {
  uint64_t id = 0;  // the table's own row id (write order)
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

// The send side of the stream: what was handed to the hub, and the counts
// shown in status.
struct SendProgress {
  uint64_t stream_id = 0;
  uint64_t highest_sent_seq = 0;  // of stream_id; rows above it never left the reporter
  uint64_t stream_restarts = 0;
  uint64_t outbox_merges = 0;
};

// What RestartStream() did.
struct StreamRestart {
  uint64_t old_stream_id = 0;
  uint64_t new_stream_id = 0;
  uint64_t rows_moved = 0;  // renumbered 1..rows_moved in the new stream
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

  // send_progress as committed (plain read), or locked FOR UPDATE inside the
  // caller's transaction (after LockMeta(): the lock order is meta first).
  absl::StatusOr<SendProgress> ReadSendProgress(MariaDbConnection& conn);
  absl::StatusOr<SendProgress> LockSendProgress(MariaDbConnection& conn);
  // In a transaction of its own: the oldest outbox row, as stored now, and
  // (for a row of the current stream) its seq recorded as sent, so that it
  // is frozen before it leaves. nullopt when the outbox is empty.
  absl::StatusOr<std::optional<OutboxRow>> ClaimOldestForSend(MariaDbConnection& conn);
  // Inside the caller's transaction, holding LockMeta(): a new random stream;
  // every outbox row of the current stream moves into it, renumbered from 1
  // in seq order, its payload rewritten with the new stream_id/seq and
  // otherwise unchanged (the same bytes); next_seq follows, the acked and
  // sent seqs restart at 0, stream_restarts counts one more.
  absl::StatusOr<StreamRestart> RestartStream(MariaDbConnection& conn);
  // Inside the caller's transaction, holding LockMeta(): rows of `stream_id`
  // with seq > after_seq, in seq order.
  absl::StatusOr<std::vector<OutboxRow>> OutboxAbove(MariaDbConnection& conn, uint64_t stream_id,
                                                     uint64_t after_seq);
  absl::Status DeleteOutboxAbove(MariaDbConnection& conn, uint64_t stream_id, uint64_t after_seq);
  absl::Status CountOutboxMerge(MariaDbConnection& conn);
  absl::StatusOr<uint64_t> OutboxRows(MariaDbConnection& conn);

  // "`<state_database>`.`<table>`", for queries written elsewhere.
  std::string Table(std::string_view table) const;
  const std::string& database() const { return database_; }

 private:
  // The one row (id = 1) of `table`, locked when `for_update`; NotFound
  // naming the table when it has none.
  absl::StatusOr<std::vector<SqlCell>> OneRow(MariaDbConnection& conn, const char* table,
                                              const char* columns, bool for_update);

  // The tables of HeldRemovals (held_removals.h).
  absl::Status EnsureHeldRemovalTables(MariaDbConnection& conn);

  // The migration step of the rollback / reset-mode / merge fixes: creates
  // send_progress (an existing state starts with every written seq counted
  // as sent: nothing already written can be merged) and adds
  // watermark.unsubtracted_bytes. Idempotent; runs at every EnsureSchema().
  absl::Status EnsureSendProgressSchema(MariaDbConnection& conn);

  std::string database_;
  bool baseline_existing_usage_;
};

}  // namespace hsync::reporter
