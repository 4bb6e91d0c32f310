#include "reporter/roster/roster_position.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {

absl::Status RosterPositionStore::EnsureTable(MariaDbConnection& conn) {
  if (table_ready_) return absl::OkStatus();
  // Additive, like the held-removal tables: an older reporter ignores it.
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", store_->Table("roster_position"), " ("
      "id TINYINT UNSIGNED NOT NULL PRIMARY KEY, "
      "epoch BIGINT UNSIGNED NOT NULL, "
      "version BIGINT UNSIGNED NOT NULL"
      ") ENGINE=InnoDB")).status());
  table_ready_ = true;
  return absl::OkStatus();
}

absl::StatusOr<RosterPosition> RosterPositionStore::Load(MariaDbConnection& conn) {
  RETURN_IF_ERROR(EnsureTable(conn));
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT epoch, version FROM ",
                                                         store_->Table("roster_position"),
                                                         " WHERE id = 1")));
  RosterPosition position;
  if (!rs.rows.empty()) {
    position.epoch = CellU64(rs.rows[0][0]);
    position.version = CellU64(rs.rows[0][1]);
  }
  return position;
}

absl::Status RosterPositionStore::Save(MariaDbConnection& conn, const RosterPosition& position) {
  RETURN_IF_ERROR(EnsureTable(conn));
  return conn
      .Execute(absl::StrCat("INSERT INTO ", store_->Table("roster_position"),
                            " (id, epoch, version) VALUES (1, ", position.epoch, ", ",
                            position.version,
                            ") ON DUPLICATE KEY UPDATE epoch = VALUES(epoch), version = VALUES(version)"))
      .status();
}

}  // namespace hsync::reporter
