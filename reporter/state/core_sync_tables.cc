#include "reporter/state/core_sync_tables.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

absl::Status EnsureCoreSyncTables(MariaDbConnection& conn, const StateStore& store) {
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", store.Table("core_sync"), " ("
      "uuid VARCHAR(36) NOT NULL PRIMARY KEY, "
      "action ENUM('sync','delete') NOT NULL, "
      "needs_apply TINYINT(1) NOT NULL, "
      "version BIGINT UNSIGNED NOT NULL, "
      "queued_at BIGINT NOT NULL, "
      "attempts INT UNSIGNED NOT NULL DEFAULT 0, "
      "next_try_at BIGINT NOT NULL DEFAULT 0, "
      "last_error VARCHAR(512) NULL, "
      "KEY due (next_try_at)"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci")).status());
  RETURN_IF_ERROR(conn.Execute(absl::StrCat(
      "CREATE TABLE IF NOT EXISTS ", store.Table("core_apply"), " ("
      "id TINYINT UNSIGNED NOT NULL PRIMARY KEY, "
      "wanted_generation BIGINT UNSIGNED NOT NULL, "
      "done_generation BIGINT UNSIGNED NOT NULL"
      ") ENGINE=InnoDB")).status());
  return conn.Execute(absl::StrCat("INSERT IGNORE INTO ", store.Table("core_apply"),
                                   " (id, wanted_generation, done_generation) VALUES (1, 0, 0)"))
      .status();
}

}  // namespace hsync::reporter
