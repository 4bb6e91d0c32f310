// Where this reporter stands in the hub's roster: the hub run (epoch) and the
// version it last applied completely. Kept in the state schema (table
// `roster_position`, one row, created when missing), so that a reporter
// restarted within minutes asks the hub for the deltas since that version
// instead of a full roster. Written after each complete update commits: a
// crash in between only makes the reporter ask for an update it already
// applied, which applies again to the same result.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/mariadb.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

struct RosterPosition {
  uint64_t epoch = 0;    // 0 = the hub did not name its run (an older hub)
  uint64_t version = 0;  // 0 = nothing held: ask for a full roster
};

class RosterPositionStore {
 public:
  // `store` names the state schema and must outlive this.
  explicit RosterPositionStore(const StateStore* store) : store_(store) {}

  // The saved position ({0, 0} when none), creating the table when missing.
  absl::StatusOr<RosterPosition> Load(MariaDbConnection& conn);
  absl::Status Save(MariaDbConnection& conn, const RosterPosition& position);

 private:
  absl::Status EnsureTable(MariaDbConnection& conn);

  const StateStore* store_;
  bool table_ready_ = false;
};

}  // namespace hsync::reporter
