// The tables of the core-sync queue (reporter/panel/core_sync_queue.h), in the
// reporter's state schema:
//   core_sync   one row per user whose proxy-core membership must still be
//               synced through the child panel's API (uuid, action, whether an
//               apply run is needed after it, a version bumped on every new
//               change, retry bookkeeping);
//   core_apply  one row: apply runs wanted (a generation counter bumped when a
//               synced change needs a run) and the generation the last
//               successful run covered.
// Additive and idempotent: created on every EnsureSchema(), so an older state
// gains them without a schema_version bump.
#pragma once

#include "absl/status/status.h"
#include "common/mariadb.h"

namespace hsync::reporter {

class StateStore;

absl::Status EnsureCoreSyncTables(MariaDbConnection& conn, const StateStore& store);

}  // namespace hsync::reporter
