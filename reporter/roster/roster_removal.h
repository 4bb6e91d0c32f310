// Removing local users the parent no longer has, per remove_policy: disable
// (enable = 0, the row stays) or delete (the row and its watermark go). Used
// by the roster applier and by `approve-removals`, so both remove the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mariadb.h"
#include "reporter/config/reporter_config.h"
#include "reporter/roster/roster_savepoint.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

struct RemovalTarget {
  std::string uuid;  // lower case
  int64_t id = 0;    // the panel's user.id
};

struct RemovalOutcome {
  std::vector<std::string> removed;  // uuids disabled or deleted
  std::vector<SkippedUser> refused;  // rows the database refused to change
};

// Removes `targets` inside the caller's transaction, in batches; a batch the
// database refuses is rolled back to a savepoint and retried user by user, so
// one refused row skips only that user. `lock_meta` is called before the first
// delete (watermark writers serialize on the state's meta row). Errors other
// than refusals are returned; the caller must then roll back.
absl::StatusOr<RemovalOutcome> RemoveLocalUsers(MariaDbConnection& conn, const StateStore& store,
                                                const std::string& user_table, RemovePolicy policy,
                                                const std::vector<RemovalTarget>& targets,
                                                const std::function<absl::Status()>& lock_meta);

// "disabled" or "deleted".
const char* RemovalVerb(RemovePolicy policy);

}  // namespace hsync::reporter
