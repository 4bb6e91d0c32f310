// usage_mode = "reset": after the hub acknowledged reports, lower the child's
// current_usage by exactly the acknowledged bytes that are still in it
// (`current_usage = current_usage - d`, never SET 0), and the watermark by
// the same d, so that current_usage - watermark (the bytes not yet reported)
// is unchanged and the panel shows only unsent usage.
//
// Bytes a panel reset already took away are not subtracted again: d is at
// most the user's watermark.unsubtracted_bytes (what was reported since the
// last reset the collector saw), and nothing is subtracted from a user whose
// counter went down since the last collect (current_usage below the
// watermark, or last_reset_time moved) — the acknowledged bytes were counted
// before that reset; the next collect sees it.
//
// Exposure (README "usage_mode"): the panel's own usage task loads a row, adds
// in Python and writes the absolute value back (PANEL.md §3). If our
// subtraction lands between its load and its commit, the panel overwrites it:
// current_usage is back up by the subtracted amount while the watermark is not,
// and those bytes are reported a second time. Watermark mode never writes
// current_usage and has no such window; that is why it is the default.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/mariadb.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

class UsageResetter {
 public:
  UsageResetter(StateStore* store, std::string panel_database);

  // Inside the caller's transaction, which must hold StateStore::LockMeta()
  // and must also delete the acknowledged outbox rows (so the subtraction
  // happens exactly once). For each user, subtracts
  // min(acknowledged bytes, unsubtracted, watermark, current_usage) from
  // current_usage, the watermark and unsubtracted, unless the counter went
  // down since the last collect (then nothing).
  absl::Status SubtractAcknowledged(MariaDbConnection& conn,
                                    const std::vector<hiddify_sync::v1::UsageReport>& acked);

 private:
  StateStore* store_;
  std::string panel_database_;
};

}  // namespace hsync::reporter
