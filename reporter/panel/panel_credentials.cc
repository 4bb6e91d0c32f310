#include "reporter/panel/panel_credentials.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {

absl::StatusOr<PanelCredentials> ResolvePanelCredentials(MariaDbConnection& conn,
                                                         const std::string& panel_database,
                                                         const PanelCredentialOverrides& overrides) {
  std::string path = overrides.proxy_path;
  if (path.empty()) {
    ASSIGN_OR_RETURN(ResultSet rs,
                     conn.Query(absl::StrCat("SELECT value FROM `", panel_database,
                                             "`.`str_config` WHERE `key` = 'proxy_path_admin'"
                                             " ORDER BY child_id LIMIT 1")));
    if (rs.rows.empty() || CellStr(rs.rows[0][0]).empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "panel: no proxy_path_admin in `", panel_database,
          "`.str_config (set [panel] proxy_path_admin_file)"));
    }
    path = CellStr(rs.rows[0][0]);
  }
  std::string key = overrides.api_key;
  if (key.empty()) {
    ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT uuid FROM `", panel_database,
                                                           "`.`admin_user` WHERE id = 1")));
    if (rs.rows.empty() || CellStr(rs.rows[0][0]).empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "panel: no owner admin (id 1) in `", panel_database,
          "`.admin_user to take the API key from (set [panel] api_key_file)"));
    }
    key = CellStr(rs.rows[0][0]);
  }
  absl::string_view trimmed = path;
  absl::ConsumePrefix(&trimmed, "/");
  absl::ConsumeSuffix(&trimmed, "/");
  PanelCredentials c;
  c.base_url = absl::StrCat("http://", overrides.address, "/", std::string(trimmed));
  c.api_key = std::move(key);
  return c;
}

}  // namespace hsync::reporter
