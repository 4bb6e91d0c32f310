#include "reporter/config/reporter_config.h"

#include <cctype>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config_reader.h"
#include "common/host_port.h"

namespace hsync::reporter {
namespace {

bool IsIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool IsNodeId(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    // As the hub's [nodes] keys: no '.', which TOML would read as a sub-table.
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

// SplitHostPort with a real port (1-65535): the reporter never listens on or
// dials "any port".
bool SplitHostRealPort(const std::string& text, std::string* host, int* port) {
  return SplitHostPort(text, host, port) && *port > 0;
}

// Reads a whole (non-secret) file, e.g. a PEM certificate.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
  return ss.str();
}

void ReadHub(ConfigReader& r, HubConfig& hub) {
  hub.address = r.RequireString("hub.address");
  std::string host;
  int port = 0;
  if (!hub.address.empty() && !SplitHostRealPort(hub.address, &host, &port)) {
    r.AddError("hub.address", "must be host:port");
  }
  hub.plaintext = r.GetBool("hub.plaintext", false);
  if (hub.plaintext && !hub.address.empty() && !IsLoopbackAddress(hub.address)) {
    r.AddError("hub.plaintext", "plaintext is only allowed to a loopback hub address; use TLS");
  }
  hub.ca_file = r.GetString("hub.ca_file", "");
  hub.cert_file = r.GetString("hub.cert_file", "");
  hub.key_file = r.GetString("hub.key_file", "");
  hub.server_name = r.GetString("hub.server_name", "");
  if (hub.cert_file.empty() != hub.key_file.empty()) {
    r.AddError(hub.cert_file.empty() ? "hub.cert_file" : "hub.key_file",
               "cert_file and key_file go together");
  }
  struct PemFile {
    const char* key;
    const std::string* path;
    std::string* out;
  };
  for (const PemFile& f : {PemFile{"hub.ca_file", &hub.ca_file, &hub.ca_pem},
                           PemFile{"hub.cert_file", &hub.cert_file, &hub.cert_pem}}) {
    if (f.path->empty()) continue;
    auto content = ReadWholeFile(*f.path);
    if (!content.ok()) r.AddError(f.key, std::string(content.status().message()));
    else *f.out = *std::move(content);
  }
  if (!hub.key_file.empty()) {
    auto key = ReadSecretFile(hub.key_file);
    if (!key.ok()) r.AddError("hub.key_file", std::string(key.status().message()));
    else hub.key_pem = *std::move(key);
  }
  std::string token_file = r.RequireString("hub.token_file");
  if (!token_file.empty()) {
    auto token = ReadSecretFile(token_file);
    if (!token.ok()) {
      r.AddError("hub.token_file", std::string(token.status().message()));
    } else if (token->find_first_of(" \t\r\n") != std::string::npos) {
      r.AddError("hub.token_file", "the token must be one line without spaces");
    } else {
      hub.token = *std::move(token);
    }
  }
}

void ReadMysql(ConfigReader& r, MysqlConfig& m) {
  m.socket = r.GetString("mysql.socket", m.socket);
  if (m.socket.empty()) r.AddError("mysql.socket", "must not be empty");
  m.user = r.GetString("mysql.user", m.user);
  if (m.user.empty()) r.AddError("mysql.user", "must not be empty");
  if (auto pw_file = r.GetOptionalString("mysql.password_file"); pw_file.has_value()) {
    auto pw = ReadSecretFile(*pw_file);
    if (!pw.ok()) r.AddError("mysql.password_file", std::string(pw.status().message()));
    else m.password = *std::move(pw);
  }
  m.database = r.GetString("mysql.database", m.database);
  if (!IsIdentifier(m.database)) r.AddError("mysql.database", "must be a plain name [A-Za-z0-9_]");
  m.state_database = r.GetString("mysql.state_database", m.state_database);
  if (!IsIdentifier(m.state_database)) {
    r.AddError("mysql.state_database", "must be a plain name [A-Za-z0-9_]");
  } else if (m.state_database == m.database) {
    r.AddError("mysql.state_database", "must differ from mysql.database (the panel's schema)");
  }
}

void ReadCollect(ConfigReader& r, CollectConfig& c) {
  c.interval = r.GetDuration("collect.interval", c.interval, absl::Seconds(5), absl::Hours(1));
  c.min_report_bytes = static_cast<uint64_t>(
      r.GetInt("collect.min_report_bytes", static_cast<int64_t>(c.min_report_bytes), 0,
               int64_t{1} << 40));
  const std::string mode =
      r.GetEnum("collect.usage_mode", "follow", {"follow", "watermark", "reset"});
  c.usage_mode = mode == "reset"       ? UsageMode::kReset
                 : mode == "watermark" ? UsageMode::kWatermark
                                       : UsageMode::kFollow;
  c.baseline_existing_usage = r.GetBool("collect.baseline_existing_usage", true);
}

void ReadOutbox(ConfigReader& r, OutboxConfig& o) {
  o.merge_after_rows = r.GetInt("outbox.merge_after_rows", o.merge_after_rows, 0, 1'000'000);
  if (o.merge_after_rows == 1) {
    r.AddError("outbox.merge_after_rows", "must be 0 (never merge) or at least 2");
  }
}

void ReadRoster(ConfigReader& r, RosterConfig& ro) {
  ro.remove_policy = r.GetEnum("roster.remove_policy", "disable", {"disable", "delete"}) == "delete"
                         ? RemovePolicy::kDelete
                         : RemovePolicy::kDisable;
  ro.guard_min = r.GetInt("roster.guard_min", ro.guard_min, 0, 1'000'000'000);
  ro.guard_fraction = r.GetDouble("roster.guard_fraction", ro.guard_fraction, 0.0, 1.0);
}

void ReadApply(ConfigReader& r, ApplyConfig& a) {
  a.command = r.GetString("apply.command", a.command);  // "" turns apply runs off
  a.debounce = r.GetDuration("apply.debounce", a.debounce, absl::ZeroDuration(), absl::Minutes(10));
  a.max_delay = r.GetDuration("apply.max_delay", a.max_delay, absl::ZeroDuration(), absl::Hours(1));
  if (a.max_delay < a.debounce) r.AddError("apply.max_delay", "must be at least apply.debounce");
  a.busy_retry =
      r.GetDuration("apply.busy_retry", a.busy_retry, absl::Milliseconds(10), absl::Minutes(10));
  a.timeout = r.GetDuration("apply.timeout", a.timeout, absl::Seconds(1), absl::Hours(1));
}

void ReadPanel(ConfigReader& r, PanelConfig& p) {
  p.core_sync = r.GetBool("panel.core_sync", p.core_sync);
  p.address = r.GetString("panel.address", p.address);
  std::string host;
  int port = 0;
  if (!SplitHostRealPort(p.address, &host, &port)) r.AddError("panel.address", "must be host:port");
  if (auto file = r.GetOptionalString("panel.proxy_path_admin_file"); file.has_value()) {
    auto path = ReadSecretFile(*file);
    if (!path.ok()) {
      r.AddError("panel.proxy_path_admin_file", std::string(path.status().message()));
    } else if (path->find_first_of(" \t\r\n?#") != std::string::npos) {
      r.AddError("panel.proxy_path_admin_file", "the admin path must be one word");
    } else {
      p.proxy_path = *std::move(path);
    }
  }
  if (auto file = r.GetOptionalString("panel.api_key_file"); file.has_value()) {
    auto key = ReadSecretFile(*file);
    if (!key.ok()) {
      r.AddError("panel.api_key_file", std::string(key.status().message()));
    } else if (key->find_first_of(" \t\r\n") != std::string::npos) {
      r.AddError("panel.api_key_file", "the key must be one line without spaces");
    } else {
      p.api_key = *std::move(key);
    }
  }
  p.timeout = r.GetDuration("panel.timeout", p.timeout, absl::Seconds(1), absl::Minutes(10));
  p.retry_initial = r.GetDuration("panel.retry_initial", p.retry_initial, absl::Milliseconds(10),
                                  absl::Minutes(10));
  p.retry_max =
      r.GetDuration("panel.retry_max", p.retry_max, absl::Milliseconds(10), absl::Hours(1));
  if (p.retry_max < p.retry_initial) r.AddError("panel.retry_max", "must be at least panel.retry_initial");
}

void ReadStatus(ConfigReader& r, StatusConfig& s) {
  s.listen = r.GetString("status.listen", s.listen);
  std::string host;
  int port = 0;
  if (!SplitHostRealPort(s.listen, &host, &port)) {
    r.AddError("status.listen", "must be host:port");
  } else if (!IsLoopbackAddress(s.listen)) {
    r.AddError("status.listen", "must be a loopback address (127.0.0.1, [::1] or localhost)");
  }
}

void ReadMetrics(ConfigReader& r, MetricsConfig& m) {
  m.listen = r.GetString("metrics.listen", m.listen);
  std::string host;
  int port = 0;
  if (!m.listen.empty() && !SplitHostRealPort(m.listen, &host, &port)) {
    r.AddError("metrics.listen", "must be host:port, [ipv6]:port, or \"\" (off)");
  }
}

absl::StatusOr<ReporterConfig> ReadAll(ConfigReader& r) {
  ReporterConfig config;
  config.source = r.source_name();
  config.node_id = r.RequireString("node_id");
  if (!config.node_id.empty() && !IsNodeId(config.node_id)) {
    r.AddError("node_id", "use letters, digits, '_' or '-' (at most 64), as in the hub's [nodes]");
  }
  std::string level = r.GetEnum("log_level", "info", {"debug", "info", "warning", "error"});
  ParseLogLevel(level, &config.log_level);
  ReadHub(r, config.hub);
  ReadMysql(r, config.mysql);
  ReadCollect(r, config.collect);
  ReadOutbox(r, config.outbox);
  ReadRoster(r, config.roster);
  ReadApply(r, config.apply);
  ReadPanel(r, config.panel);
  ReadStatus(r, config.status);
  ReadMetrics(r, config.metrics);
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  return config;
}

}  // namespace

const char* UsageModeName(UsageMode mode) {
  switch (mode) {
    case UsageMode::kFollow: return "follow";
    case UsageMode::kReset: return "reset";
    case UsageMode::kWatermark: break;
  }
  return "watermark";
}

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port;
  std::string h;
  int port = 0;
  if (SplitHostRealPort(host_port, &h, &port)) host = h;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  if (!absl::StartsWith(host, "127.")) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') ++dots;
    else if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return dots == 3;
}

absl::StatusOr<ReporterConfig> LoadReporterConfig(const std::string& path) {
  auto reader = ConfigReader::LoadFile(path);
  if (!reader.ok()) return reader.status();
  return ReadAll(*reader);
}

absl::StatusOr<ReporterConfig> ParseReporterConfig(const std::string& text,
                                                   const std::string& source_name) {
  auto reader = ConfigReader::LoadString(text, source_name);
  if (!reader.ok()) return reader.status();
  return ReadAll(*reader);
}

absl::StatusOr<StatusConfig> LoadStatusListen(const std::string& path) {
  auto reader = ConfigReader::LoadFile(path);
  if (!reader.ok()) return reader.status();
  StatusConfig status;
  status.listen = reader->GetString("status.listen", status.listen);
  if (!IsLoopbackAddress(status.listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": status.listen: must be a loopback address"));
  }
  return status;
}

}  // namespace hsync::reporter
