// The reporter's configuration (/etc/hiddify-sync/reporter.toml), read and
// validated as a whole: every bad value is reported with its dotted key and the
// daemon refuses to start (exit 2). Secrets are read from their files here and
// never appear in any message.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/logging.h"

namespace hsync::reporter {

inline constexpr char kDefaultConfigPath[] = "/etc/hiddify-sync/reporter.toml";

// collect.usage_mode (README "usage_mode"): kFollow = the child's counter
// shows the parent's usage plus the unreported local bytes (UsageFollower);
// kWatermark = the counter is left alone; kReset = acknowledged bytes are
// subtracted (UsageResetter).
enum class UsageMode { kWatermark, kReset, kFollow };

// "follow", "watermark" or "reset".
const char* UsageModeName(UsageMode mode);
enum class RemovePolicy { kDisable, kDelete };

struct HubConfig {
  std::string address;      // host:port of hiddify-sync-hub
  bool plaintext = false;   // only for a loopback address (tests, local setups)
  std::string ca_file;      // PEM roots; empty = system roots
  std::string cert_file;    // optional client certificate (PEM) ...
  std::string key_file;     // ... and its key; both or neither
  std::string server_name;  // optional TLS name override (SNI / verification)
  std::string token;        // from token_file; a secret
  std::string ca_pem, cert_pem, key_pem;  // file contents, loaded at config time
};

struct MysqlConfig {
  std::string socket = "/var/run/mysqld/mysqld.sock";
  std::string user = "root";
  std::string password;  // from password_file (optional); a secret
  std::string database = "hiddifypanel";
  std::string state_database = "hiddify_sync";
};

struct CollectConfig {
  absl::Duration interval = absl::Seconds(30);
  uint64_t min_report_bytes = 1'000'000;
  UsageMode usage_mode = UsageMode::kFollow;
  // On a fresh state, record existing usage as already reported (see README).
  bool baseline_existing_usage = true;
};

struct OutboxConfig {
  // While the hub is away: once the outbox holds more reports than this, the
  // ones never sent are merged into one (per-user sums). 0 = never merge.
  int64_t merge_after_rows = 20;
};

struct RosterConfig {
  RemovePolicy remove_policy = RemovePolicy::kDisable;
  int64_t guard_min = 10;
  double guard_fraction = 0.25;
};

struct ApplyConfig {
  // Run after synced user changes that need it (sing-box / WireGuard);
  // "" = no apply runs.
  std::string command = "/opt/hiddify-manager/install.sh apply_users --no-gui";
  absl::Duration debounce = absl::Seconds(2);
  absl::Duration max_delay = absl::Seconds(30);   // a burst never delays a run longer
  absl::Duration busy_retry = absl::Seconds(3);   // after exit 12 (another run active)
  absl::Duration timeout = absl::Minutes(5);
};

// The child panel's own API, used to make its proxy cores follow each changed
// user (PATCH {} / DELETE). Zero configuration on Hiddify Manager: the admin
// path and the owner's key are read from the panel's database when not set.
struct PanelConfig {
  bool core_sync = true;                   // false: no API calls (apply runs only)
  std::string address = "127.0.0.1:9000";  // host:port of the panel process (plain HTTP)
  std::string proxy_path;  // from proxy_path_admin_file; "" = str_config proxy_path_admin; a secret
  std::string api_key;     // from api_key_file; "" = admin_user id 1 uuid; a secret
  absl::Duration timeout = absl::Seconds(15);
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(1);
};

struct StatusConfig {
  std::string listen = "127.0.0.1:7444";
};

struct MetricsConfig {
  // Prometheus /metrics over HTTP; "" = off. Any address is allowed (a central
  // Prometheus scrapes children over the network); non-loopback is logged.
  std::string listen = "127.0.0.1:7446";
};

struct ReporterConfig {
  std::string source;  // the file it came from
  std::string node_id;
  LogLevel log_level = LogLevel::kInfo;
  HubConfig hub;
  MysqlConfig mysql;
  CollectConfig collect;
  OutboxConfig outbox;
  RosterConfig roster;
  ApplyConfig apply;
  PanelConfig panel;
  StatusConfig status;
  MetricsConfig metrics;
};

// Reads and validates `path`. InvalidArgument lists every problem as
// "<file>: <key>: <reason>".
absl::StatusOr<ReporterConfig> LoadReporterConfig(const std::string& path);
// Same, from text (tests); relative secret paths are used as given.
absl::StatusOr<ReporterConfig> ParseReporterConfig(const std::string& text,
                                                   const std::string& source_name);

// Only the [status] part, for the `status` subcommand (which must work even
// when the hub or MySQL settings are broken).
absl::StatusOr<StatusConfig> LoadStatusListen(const std::string& path);

// True for 127.0.0.0/8, ::1 and "localhost" (with or without a port).
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace hsync::reporter
