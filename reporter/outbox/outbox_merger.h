// Keeps the outbox small while the hub is away (README "Outbox merge"): when
// it holds more than `merge_after_rows` reports, every report that never left
// the reporter (seq above send_progress.highest_sent_seq) is replaced by as few
// reports as the per-report cap allows, holding the same bytes: per user the
// sum of bytes and the latest last_online, collected_at of the newest, the
// oldest row's created_at. They take the lowest of the replaced seqs onwards
// and next_seq follows, so seqs stay 1, 2, 3, ... without gaps. A report that
// may have reached the hub is never touched (its payload must stay byte for
// byte what the hub may have). Runs inside the collect transaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/mariadb.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

struct OutboxMergeResult {
  uint64_t rows_merged = 0;  // rows replaced (0 = nothing merged)
  uint64_t rows_written = 0;
  uint64_t first_seq = 0;    // the merged rows hold [first_seq, next_seq)
  uint64_t next_seq = 0;
};

class OutboxMerger {
 public:
  // `merge_after_rows` 0 = never merge.
  OutboxMerger(StateStore* store, size_t merge_after_rows, size_t max_usages_per_report);

  // Inside the caller's transaction, holding StateStore::LockMeta() (`meta`
  // as locked). Merges when the outbox is over the threshold; the caller sets
  // next_seq to the result's next_seq when rows were merged.
  absl::StatusOr<OutboxMergeResult> MergeIfDue(MariaDbConnection& conn, const StreamState& meta,
                                               uint64_t next_seq);

 private:
  StateStore* store_;
  size_t merge_after_rows_;
  size_t max_usages_per_report_;
};

}  // namespace hsync::reporter
