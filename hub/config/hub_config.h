// The hub's configuration: one TOML file (default /etc/hiddify-sync/hub.toml).
// Loading checks every key and reports all problems at once, each with its
// dotted key and reason; the hub refuses to start on any of them.
//
// Keys (defaults in brackets):
//   log_level = "info"                 debug | info | warning | error
//   listen = "0.0.0.0:7443"            gRPC address, "host:port" or "[v6]:port" (port 0 = any free)
//   plaintext = false                  true = no TLS; only for loopback or tests (warned otherwise)
//   insecure_parent_tls = false        true = do not verify the parent panel's certificate (warned)
//   operator_socket = "/run/hiddify-sync/hub.sock"
//                                      unix socket for operators (status, grpcurl), mode 0600 in a
//                                      0700 dir; GetStatus/GetRoster there need no token ("" = off)
//   [tls]                              required unless plaintext = true
//     cert_file, key_file              PEM server certificate chain and private key
//     client_ca_file = ""              PEM CA(s) that sign reporters' client certificates
//     require_client_cert = false      refuse reporters without a valid client certificate
//   [parent]                           the parent Hiddify panel
//     url                              https://<panel-domain>/<admin_proxy_path> (required)
//     api_key_file                     file holding the Hiddify-API-Key (required; never logged)
//     ca_file = ""                     extra CA bundle for the panel's certificate
//     timeout = "20s"                  whole-request timeout; connect_timeout = "5s"
//     write = "api"                    how usage reaches the parent: "api" (GET + PATCH per user)
//                                      or "database" (one transaction per batch in the panel's
//                                      MariaDB on this host; roster read from there too)
//   [parent.database]                  (write = "database") the panel's MariaDB
//     socket = "/run/mysqld/mysqld.sock"
//     user = "root"; password_file = "" (none: unix_socket authentication)
//     database = "hiddifypanel"        the panel's schema
//     hub_database = "hiddify_sync_hub"  the hub's own schema there (ids of applied batches)
//   [journal]
//     path = "/var/lib/hiddify-sync/hub/journal.db"
//     keep_reports = "168h"            raw audit reports older than this are pruned
//     audit_max_bytes = 1073741824     ceiling of the raw audit reports (oldest pruned first; 0 = age only)
//   [apply]
//     interval = "1s"                  how often pending usage is checked
//     max_apply_delay = "60s"          a user's bytes wait at most this long before a PATCH
//     urgent_margin_bytes = 104857600  bytes within this of the quota are PATCHed at once
//     urgent_horizon = "120s"          a user whose recent rate reaches its quota within this is
//                                      PATCHed first (closest to the quota first)
//     max_patches_per_minute = 120     PATCH budget for the panel (and 1/6 of it per 10 s); 0 = none
//   [roster]
//     poll_interval = "30s"            how often the parent's user list is read (at least)
//     max_list_share = 0.1             longer intervals while the list is slow: the panel spends at
//                                      most this share of its time on the hub's list reads (0 = off)
//     usage_interval = "120s"          usage-only changes go to children at most this often ("0s" = at once)
//     history_max_bytes = 67108864     deltas kept for reporters that reconnect (older -> full roster)
//   [metrics]
//     listen = "127.0.0.1:7445"        Prometheus /metrics over HTTP ("" = off; non-loopback warned)
//   [nodes]                            one line per child: <node_id> = "sha256:<hex>"
//     <node_id> = "sha256:<64 hex digits of sha256(token)>"
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/host_port.h"
#include "common/logging.h"
#include "hub/apply/applier.h"
#include "hub/parent/parent_client.h"
#include "hub/parent/parent_database.h"

namespace hsync::hub {

inline constexpr char kDefaultHubConfigPath[] = "/etc/hiddify-sync/hub.toml";
inline constexpr char kDefaultOperatorSocket[] = "/run/hiddify-sync/hub.sock";

struct HubTlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  bool require_client_cert = false;
};

// How the applier makes the parent hold usage ([parent] write).
enum class ParentWriteMode { kApi, kDatabase };

struct HubConfig {
  std::string source;  // the file it was read from
  LogLevel log_level = LogLevel::kInfo;
  std::string listen = "0.0.0.0:7443";
  bool plaintext = false;
  // Absolute path of the operator unix socket; "" = none.
  std::string operator_socket = kDefaultOperatorSocket;
  HubTlsConfig tls;
  // base_url, api_key (read from api_key_file), TLS and timeouts.
  ParentClientOptions parent;
  std::string parent_api_key_file;
  ParentWriteMode parent_write = ParentWriteMode::kApi;
  // [parent.database]; used only with ParentWriteMode::kDatabase.
  ParentDatabaseOptions parent_database;
  std::string parent_database_password_file;
  std::string journal_path = "/var/lib/hiddify-sync/hub/journal.db";
  absl::Duration keep_reports = absl::Hours(7 * 24);
  uint64_t audit_max_bytes = uint64_t{1} << 30;  // 0 = audit bounded by age only
  ApplierOptions apply;
  absl::Duration roster_poll_interval = absl::Seconds(30);
  double roster_max_list_share = 0.1;  // 0 = read every poll_interval whatever it costs
  // Usage-only changes reach children at most once per this interval (0 = at once).
  absl::Duration roster_usage_interval = absl::Seconds(120);
  // Bytes of deltas kept for streams that are behind (reconnects within minutes).
  uint64_t roster_history_max_bytes = uint64_t{64} << 20;
  std::string metrics_listen = "127.0.0.1:7445";  // "" = no /metrics
  // node_id -> "sha256:<hex>" of the node's token.
  std::map<std::string, std::string> node_token_hashes;
  // Things that are allowed but risky (plaintext off loopback, no TLS
  // verification of the parent, no nodes); the hub logs them at start.
  std::vector<std::string> warnings;
};

// Reads and checks the file. InvalidArgument lists every bad key with its
// reason ("<file>: parent.url: required; <file>: apply.interval: ..."); a
// missing/unreadable file is NotFound/PermissionDenied. The API key is read
// from parent.api_key_file; no message ever contains it.
absl::StatusOr<HubConfig> LoadHubConfig(const std::string& path);
// Same, from text (`source_name` appears in messages).
absl::StatusOr<HubConfig> ParseHubConfig(std::string_view text, const std::string& source_name);

// True for 127.0.0.0/8, ::1, "localhost" (the host part of a listen address).
bool IsLoopbackHost(std::string_view host);
// "https://panel.example.com/<secret admin path>" -> "https://panel.example.com/...":
// the admin proxy path is a secret and never logged.
std::string RedactedParentUrl(const std::string& url);

}  // namespace hsync::hub
