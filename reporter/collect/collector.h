// One collect cycle (ARCHITECTURE.md "Exactly once", step 1), in ONE MariaDB
// transaction on the child:
//   lock the state (meta row), read every user's current_usage, last_online and
//   last_reset_time joined with the reporter's watermark, compute per user
//     delta = current - reported            (normal)
//     delta = current                       (a reset: current < reported, or
//                                            last_reset_time moved)
//   users whose delta is below min_report_bytes wait (their watermark is not
//   advanced, nothing is lost); last_online is reported when newer than the
//   last reported one; if anything is to be reported, write outbox row(s) with
//   the next seq(s), advance the watermarks, commit.
// Per user it also tracks the bytes reported since the last reset seen that
// usage_mode = "reset" has not subtracted yet (a reset restarts that amount:
// what was reported before it is no longer in current_usage). When the
// outbox is over merge_after_rows, the reports that never left are merged
// (OutboxMerger) in the same transaction.
// It never writes the panel's tables. Memory stays bounded: users are read in
// primary-key-ordered batches of one snapshot, and reports are capped in size.
//
// Baseline: when the state is fresh and baseline_existing_usage is on, the
// first cycle records every user's current usage as already reported, without
// reporting it (see README "First start").
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mariadb.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

struct CollectOptions {
  std::string node_id;
  std::string panel_database = "hiddifypanel";
  uint64_t min_report_bytes = 1'000'000;
  size_t read_batch = 20'000;              // users per SELECT (memory ~ 0.3 KB each)
  size_t upsert_batch = 2'500;             // watermark rows per INSERT
  size_t max_usages_per_report = 20'000;   // keeps each report well under gRPC's 4 MB
  size_t merge_after_rows = 20;            // [outbox] merge_after_rows; 0 = never merge
};

struct CollectResult {
  bool baselined = false;        // this cycle only recorded the baseline
  uint64_t stream_id = 0;
  uint64_t first_seq = 0;        // seqs written this cycle: [first_seq, last_seq]
  uint64_t last_seq = 0;         // 0 = nothing written (after a merge: the last seq now written)
  uint64_t rows_merged = 0;      // unsent reports merged this cycle (0 = no merge)
  uint64_t merged_into = 0;      // ... into this many
  uint64_t users_scanned = 0;
  uint64_t users_reported = 0;   // entries in the reports
  uint64_t bytes_reported = 0;
  uint64_t users_waiting = 0;    // below the threshold, bytes kept for later
  uint64_t bytes_waiting = 0;
  uint64_t resets_detected = 0;
  uint64_t watermarks_written = 0;
  uint64_t watermarks_dropped = 0;  // of users deleted from the panel
  uint64_t users_skipped = 0;    // uuid not canonical: never reported
  absl::Duration read_time;      // spent in the batch SELECTs
  absl::Duration write_time;     // spent writing watermarks
};

class Collector {
 public:
  // `store` must outlive the collector.
  Collector(StateStore* store, CollectOptions options);

  // Runs one cycle as described above; `now` is the report's collected_at.
  // On error nothing is written (the transaction is rolled back).
  absl::StatusOr<CollectResult> CollectOnce(MariaDbConnection& conn, absl::Time now);

 private:
  StateStore* store_;
  CollectOptions options_;
};

}  // namespace hsync::reporter
