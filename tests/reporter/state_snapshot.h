// What a VM snapshot or a backup of a child keeps, for rollback tests: every
// table of the reporter's state schema, row for row, and the panel users'
// counters (current_usage, last_online, last_reset_time). Restore() puts them
// back as a VM restore would: the state rows exactly as they were, the
// counters as they were. Copies live in the schema `<state_db>_snap`.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/mariadb.h"

namespace hsync::testing {

class StateSnapshot {
 public:
  StateSnapshot(std::string state_db, std::string panel_db)
      : state_db_(std::move(state_db)), panel_db_(std::move(panel_db)) {}

  absl::Status Take(MariaDbConnection& conn);
  // In one transaction. Tables that did not exist at Take() are left alone.
  absl::Status Restore(MariaDbConnection& conn);

 private:
  std::string snap_db() const { return state_db_ + "_snap"; }
  std::string state_db_;
  std::string panel_db_;
};

}  // namespace hsync::testing
