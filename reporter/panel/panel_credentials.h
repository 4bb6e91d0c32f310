// Where the child panel's API is and how to authenticate to it. Zero
// configuration on Hiddify Manager: the admin proxy path comes from the
// panel's str_config (`proxy_path_admin`), the API key is the owner admin's
// uuid (admin_user id 1); both are read from the panel's database unless
// [panel] overrides them. Secrets: `api_key` and `proxy_path` never go into a
// log line or a status message.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/mariadb.h"

namespace hsync::reporter {

struct PanelCredentials {
  std::string base_url;  // "http://127.0.0.1:9000/<proxy_path>" (a secret: holds the path)
  std::string api_key;   // a secret
};

struct PanelCredentialOverrides {
  std::string address = "127.0.0.1:9000";  // host:port of the panel process
  std::string proxy_path;                  // "" = str_config proxy_path_admin
  std::string api_key;                     // "" = admin_user id 1 uuid
};

// Fills what `overrides` leaves empty from `panel_database`. FailedPrecondition
// (naming the table, never the value) when the panel has no such setting.
absl::StatusOr<PanelCredentials> ResolvePanelCredentials(MariaDbConnection& conn,
                                                         const std::string& panel_database,
                                                         const PanelCredentialOverrides& overrides);

}  // namespace hsync::reporter
