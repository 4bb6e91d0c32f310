// Does the child panel add usage atomically in SQL? Panels from v10.86.1 on
// (migration _v103) add their usage task's bytes with the stored procedure
// `add_usage_json` (`current_usage = current_usage + b`); older panels load
// the row, add in Python and write the absolute value back, so any other
// writer of current_usage can be overwritten (PANEL.md §3). The answer is
// read from information_schema.ROUTINES (the reporter's MariaDB user must be
// allowed to see the panel's routines: root or the panel's own user is).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/mariadb.h"

namespace hsync::reporter {

inline constexpr char kAtomicUsageProcedure[] = "add_usage_json";

// True when `panel_database` has the procedure add_usage_json.
absl::StatusOr<bool> PanelAddsUsageAtomically(MariaDbConnection& conn,
                                              const std::string& panel_database);

}  // namespace hsync::reporter
