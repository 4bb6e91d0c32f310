// What the panel derives from the user table for its cores (PANEL.md §3-§4):
// each user's is_active, and what install.sh renders into a core's
// configuration (users that are is_active and have usage_limit > current_usage).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "tests/panelsim/db_session.h"

namespace hsync::panelsim {

struct UserCoreState {
  std::string uuid;  // lower case
  bool is_active = false;
  bool rendered = false;  // is_active and usage_limit > current_usage
};

// The users of the table (only those in `uuids`, lower case, when given).
absl::StatusOr<std::vector<UserCoreState>> ReadUserCoreStates(
    DbSession& db, absl::CivilDay today, const std::optional<std::set<std::string>>& uuids);

// Reads the user table now; the uuids rendered into a core, sorted, lower case.
absl::StatusOr<std::vector<std::string>> RenderCoreUsers(DbSession& db, absl::CivilDay today);

}  // namespace hsync::panelsim
