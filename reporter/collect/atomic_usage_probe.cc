#include "reporter/collect/atomic_usage_probe.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {

absl::StatusOr<bool> PanelAddsUsageAtomically(MariaDbConnection& conn,
                                              const std::string& panel_database) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT COUNT(*) FROM information_schema.ROUTINES"
                                           " WHERE ROUTINE_SCHEMA = ",
                                           conn.Quote(panel_database),
                                           " AND ROUTINE_NAME = ", conn.Quote(kAtomicUsageProcedure),
                                           " AND ROUTINE_TYPE = 'PROCEDURE'")));
  return !rs.rows.empty() && CellU64(rs.rows[0][0]) > 0;
}

}  // namespace hsync::reporter
