// The hub's durable journal (embedded SQLite, WAL): per-stream acknowledged
// seqs, per-user pending byte totals, raw reports for audit (bounded by age
// and size), a content hash of every accepted report (to notice a reporter
// whose state was rolled back), apply intents, orphan counters. Once Accept()
// returns, the bytes survive a crash. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::hub {

struct AcceptResult {
  uint64_t acked_seq = 0;  // highest durable seq of the stream
  bool duplicate = false;  // seq <= acked_seq: nothing was changed
};

struct PendingUser {
  std::string uuid;
  uint64_t bytes = 0;                 // sum over all nodes, not yet applied
  absl::Time last_online;             // latest reported; InfinitePast = unknown
  absl::Time first_pending_at;        // when the oldest of these bytes arrived
};

// Written before a PATCH, removed with the pending subtraction after it.
struct ApplyIntent {
  std::string uuid;
  uint64_t value_read = 0;     // parent's current_usage before
  uint64_t value_written = 0;  // value_read + bytes_applied (clamped by the panel)
  uint64_t bytes_applied = 0;
  absl::Time created_at;
};

// One user's share of a database-writer batch.
struct BatchUser {
  std::string uuid;
  uint64_t bytes = 0;
};

// A batch of the database writer: recorded before the parent's transaction,
// open until CompleteBatch (it applied) or AbandonBatch (it did not).
struct ApplyBatch {
  int64_t id = 0;  // random, positive, 63 bits: also the batch's id on the parent
  absl::Time created_at;
  std::vector<BatchUser> users;  // by uuid
};

struct StreamState {
  std::string node_id;
  uint64_t stream_id = 0;
  uint64_t last_seq = 0;
  uint64_t reports = 0;     // accepted (not duplicate) reports
  uint64_t duplicates = 0;  // duplicate reports seen for this stream (acked, changed nothing)
  uint64_t bytes = 0;
  absl::Time last_report_at;
};

struct JournalStats {
  uint64_t pending_users = 0;
  uint64_t pending_bytes = 0;
  uint64_t reports = 0;            // raw reports kept (the audit copy)
  uint64_t audit_bytes = 0;        // their payload sizes, summed
  uint64_t audit_max_bytes = 0;    // JournalOptions::audit_max_bytes (0 = age only)
  uint64_t rollback_refusals = 0;  // reports refused as rolled back, since Open
  absl::Time oldest_pending_at = absl::InfinitePast();
  uint64_t orphaned_bytes = 0;
  uint64_t orphaned_users = 0;
  uint64_t bytes_applied_total = 0;
};

struct JournalOptions {
  // Ceiling of the audit copy: the raw reports' payload sizes summed. When an
  // accepted report takes it over, the oldest reports are deleted in the
  // background until it is ~3% below. 0 = bounded by age only.
  uint64_t audit_max_bytes = 0;
  // Content hashes of accepted reports are pruned with the audit's age limit,
  // but each stream keeps at least its last this many, whatever their age.
  uint64_t report_hashes_kept_per_stream = 1000;
};

class Journal {
 public:
  // Opens or creates the journal at `path` (WAL, synchronous=FULL), migrating
  // an older schema. Holds an exclusive flock on "<path>.lock" while open: a
  // second Journal on the same path (another hub) gets FailedPrecondition.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::string& path,
                                                       JournalOptions options = {});
  ~Journal();

  // Records an already validated report durably, in one transaction with
  // other concurrent callers (group commit): stream seq, pending totals,
  // latest last_online, raw report, content hash. A seq <= the stream's acked
  // seq is a duplicate and changes nothing (also within one batch; only the
  // stream's duplicates counter moves) -- unless the hash kept for that seq
  // differs: then the reporter's state was rolled back (VM snapshot, backup
  // restore) and is reusing seqs for new traffic; the report is refused with
  // AlreadyExists (nothing changes; logged once per stream, counted in
  // Stats().rollback_refusals) and the reporter must start a new stream. A
  // seq whose hash is no longer kept is a plain duplicate. A gap (seq >
  // acked + 1) is accepted. A new stream_id starts at acked seq 0. Usages
  // with 0 bytes create no pending row.
  // Blocks until committed (fsynced): an OK result is durable.
  absl::StatusOr<AcceptResult> Accept(const hiddify_sync::v1::UsageReport& report);

  // Users with pending bytes > 0, oldest first (by first_pending_at).
  absl::StatusOr<std::vector<PendingUser>> PendingUsers();
  // The pending rows (bytes > 0) of those of `uuids` that have one, oldest
  // first; reads only these rows.
  absl::StatusOr<std::vector<PendingUser>> PendingUsersOf(const std::vector<std::string>& uuids);
  // The users whose pending row may have changed (bytes added or taken, row
  // removed, age restarted) since the previous call, by uuid, once each;
  // the set is then emptied. A user is added after its change committed, so
  // reading its row after this call returns it sees the change. (A write that
  // failed may add its users too: harmless, they are read and found as they are.)
  // Held in memory, one entry per user at most, until taken.
  std::vector<std::string> TakeChangedPendingUsers();

  // Persists the intent (durable on return). At most one open intent per
  // user: AlreadyExists if one is open. FailedPrecondition if bytes_applied
  // exceeds the user's pending bytes or the user is in an open batch. created_at unset (epoch) = now.
  absl::Status RecordIntent(const ApplyIntent& intent);
  // In one transaction: pending[uuid] -= bytes_applied, applied total += it, drop the intent.
  // Requires the open intent with the same bytes_applied (FailedPrecondition
  // otherwise, nothing changed), so a repeated call never subtracts twice.
  absl::Status CompleteIntent(const std::string& uuid, uint64_t bytes_applied);
  // Drops the intent without touching pending (the PATCH did not happen). OK if none.
  absl::Status AbandonIntent(const std::string& uuid);
  absl::StatusOr<std::vector<ApplyIntent>> OpenIntents();
  // Persists a new batch (durable on return) with a fresh random id.
  // InvalidArgument for no users, a user twice or 0 bytes; FailedPrecondition
  // when a user has fewer pending bytes, an open intent, or is in another
  // open batch (nothing recorded then).
  absl::StatusOr<ApplyBatch> RecordBatch(std::vector<BatchUser> users);
  // In one transaction, for every user of the open batch: pending -= its
  // bytes, counted as applied, or as orphaned for the uuids in `orphaned`
  // (the parent had no such user); the batch is dropped. Bytes that arrived
  // after the batch was recorded stay pending, their age restarting there.
  // NotFound when the batch is not open, so a repeated call never subtracts twice.
  absl::Status CompleteBatch(int64_t id, const std::vector<std::string>& orphaned);
  // Drops the batch without touching pending (the parent did not commit it). OK if none.
  absl::Status AbandonBatch(int64_t id);
  // The open batches, oldest first.
  absl::StatusOr<std::vector<ApplyBatch>> OpenBatches();

  // Moves `bytes` of the user's pending total to the orphan counters (orphaned
  // users = distinct uuids ever orphaned). Refused (FailedPrecondition) while
  // the user has an open intent or batch, or fewer pending bytes.
  absl::Status MarkOrphaned(const std::string& uuid, uint64_t bytes);

  absl::StatusOr<JournalStats> Stats();
  absl::StatusOr<std::vector<StreamState>> Streams();
  // Deletes raw audit reports older than `age`, then the oldest while the
  // audit copy is over audit_max_bytes, and content hashes older than `age`
  // (except each stream's last report_hashes_kept_per_stream). In small batches
  // between ingest; pending bytes are never touched.
  absl::Status PruneReports(absl::Duration age);

 private:
  Journal() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hsync::hub
