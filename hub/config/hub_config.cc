#include "hub/config/hub_config.h"

#include <unistd.h>

#include <cstdint>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config_reader.h"
#include "hub/service/node_auth.h"

namespace hsync::hub {
namespace {

// Records an error when `path` is set but cannot be read by this process.
void CheckReadableFile(ConfigReader& reader, std::string_view key, const std::string& path) {
  if (path.empty()) return;
  if (::access(path.c_str(), R_OK) != 0) {
    reader.AddError(key, absl::StrCat("cannot read file ", path));
  }
}

// "https://host[:port]/path" -> host, or "" when the URL is not http(s).
std::string UrlHost(const std::string& url, bool* https) {
  std::string_view rest;
  if (absl::StartsWith(url, "https://")) {
    *https = true;
    rest = std::string_view(url).substr(8);
  } else if (absl::StartsWith(url, "http://")) {
    *https = false;
    rest = std::string_view(url).substr(7);
  } else {
    return "";
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string host;
  int port = 0;
  if (SplitHostPort(authority, &host, &port)) return host;
  return std::string(authority);
}

void ReadListen(ConfigReader& reader, HubConfig& config) {
  config.listen = reader.GetString("listen", config.listen);
  config.plaintext = reader.GetBool("plaintext", false);
  std::string host;
  int port = 0;
  if (!SplitHostPort(config.listen, &host, &port)) {
    reader.AddError("listen", absl::StrCat("must be \"host:port\" or \"[ipv6]:port\" with a port of "
                                           "0-65535, got \"", config.listen, "\""));
    return;
  }
  if (config.plaintext && !IsLoopbackHost(host)) {
    config.warnings.push_back(absl::StrCat(
        "plaintext = true on a non-loopback address (", config.listen,
        "): node tokens and usage travel unencrypted; use [tls] outside tests"));
  }
}

void ReadOperatorSocket(ConfigReader& reader, HubConfig& config) {
  config.operator_socket = reader.GetString("operator_socket", config.operator_socket);
  const std::string& path = config.operator_socket;
  if (path.empty()) return;  // off
  // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
  constexpr size_t kMaxSocketPath = 107;
  if (path.front() != '/') {
    reader.AddError("operator_socket", absl::StrCat("must be an absolute path or \"\" (off), got \"",
                                                    path, "\""));
  } else if (path.size() > kMaxSocketPath) {
    reader.AddError("operator_socket", absl::StrCat("path is ", path.size(), " bytes long; a unix "
                                                    "socket path may have at most ", kMaxSocketPath));
  } else if (path.back() == '/') {
    reader.AddError("operator_socket", "must name the socket file, not a directory");
  }
}

void ReadTls(ConfigReader& reader, HubConfig& config) {
  HubTlsConfig& tls = config.tls;
  tls.cert_file = reader.GetString("tls.cert_file", "");
  tls.key_file = reader.GetString("tls.key_file", "");
  tls.client_ca_file = reader.GetString("tls.client_ca_file", "");
  tls.require_client_cert = reader.GetBool("tls.require_client_cert", false);
  if (config.plaintext) {
    if (!tls.cert_file.empty() || !tls.key_file.empty()) {
      config.warnings.push_back("plaintext = true: the [tls] files are ignored");
    }
    return;
  }
  if (tls.cert_file.empty()) {
    reader.AddError("tls.cert_file", "required unless plaintext = true");
  }
  if (tls.key_file.empty()) {
    reader.AddError("tls.key_file", "required unless plaintext = true");
  }
  CheckReadableFile(reader, "tls.cert_file", tls.cert_file);
  CheckReadableFile(reader, "tls.key_file", tls.key_file);
  CheckReadableFile(reader, "tls.client_ca_file", tls.client_ca_file);
  if (tls.require_client_cert && tls.client_ca_file.empty()) {
    reader.AddError("tls.require_client_cert", "needs tls.client_ca_file to verify client certificates");
  }
}

void ReadParent(ConfigReader& reader, HubConfig& config) {
  ParentClientOptions& parent = config.parent;
  parent.base_url = reader.RequireString("parent.url");
  while (absl::EndsWith(parent.base_url, "/")) parent.base_url.pop_back();
  if (!parent.base_url.empty()) {
    bool https = false;
    const std::string host = UrlHost(parent.base_url, &https);
    if (host.empty()) {
      reader.AddError("parent.url", "must start with https:// (or http:// for a panel on this host)");
    } else if (!https && !IsLoopbackHost(host)) {
      config.warnings.push_back(
          "parent.url uses http:// to another host: the API key travels unencrypted");
    }
  }
  config.parent_api_key_file = reader.RequireString("parent.api_key_file");
  if (!config.parent_api_key_file.empty()) {
    absl::StatusOr<std::string> key = ReadSecretFile(config.parent_api_key_file);
    if (key.ok()) {
      parent.api_key = *std::move(key);
    } else {
      reader.AddError("parent.api_key_file", std::string(key.status().message()));
    }
  }
  const bool insecure = reader.GetBool("insecure_parent_tls", false);
  parent.verify_tls = !insecure;
  if (insecure) {
    config.warnings.push_back(
        "insecure_parent_tls = true: the parent's certificate is not checked (a man-in-the-middle "
        "could read the API key); prefer [parent] ca_file");
  }
  // The key's earlier name: refused with a pointer to the new one (not read
  // through a literal, so the examples test does not ask to document it).
  static constexpr char kOldVerifyKey[] = "parent.verify_tls";
  if (reader.Has(kOldVerifyKey)) {
    const bool verify = reader.GetBool(kOldVerifyKey, true);
    reader.AddError(kOldVerifyKey, verify ? "no longer exists; remove it (the certificate is "
                                            "verified by default)"
                                          : "no longer exists; use insecure_parent_tls = true "
                                            "(top level) instead");
  }
  parent.ca_file = reader.GetString("parent.ca_file", "");
  CheckReadableFile(reader, "parent.ca_file", parent.ca_file);
  parent.request_timeout =
      reader.GetDuration("parent.timeout", absl::Seconds(20), absl::Seconds(1), absl::Minutes(10));
  parent.connect_timeout = reader.GetDuration("parent.connect_timeout", absl::Seconds(5),
                                              absl::Milliseconds(100), absl::Minutes(5));
}

void ReadParentDatabase(ConfigReader& reader, HubConfig& config) {
  const std::string write = reader.GetEnum("parent.write", "api", {"api", "database"});
  config.parent_write = write == "database" ? ParentWriteMode::kDatabase : ParentWriteMode::kApi;
  ParentDatabaseOptions& db = config.parent_database;
  db.socket = reader.GetString("parent.database.socket", db.socket);
  if (db.socket.empty() || db.socket.front() != '/') {
    reader.AddError("parent.database.socket", "must be the absolute path of MariaDB's unix socket");
  }
  db.user = reader.GetString("parent.database.user", db.user);
  if (db.user.empty()) reader.AddError("parent.database.user", "must not be empty");
  config.parent_database_password_file = reader.GetString("parent.database.password_file", "");
  if (!config.parent_database_password_file.empty()) {
    absl::StatusOr<std::string> password = ReadSecretFile(config.parent_database_password_file);
    if (password.ok()) {
      db.password = *std::move(password);
    } else {
      reader.AddError("parent.database.password_file", std::string(password.status().message()));
    }
  }
  db.database = reader.GetString("parent.database.database", db.database);
  if (!IsPlainSqlName(db.database)) {
    reader.AddError("parent.database.database", "must be a plain name [A-Za-z0-9_] (1-64)");
  }
  db.hub_database = reader.GetString("parent.database.hub_database", db.hub_database);
  if (!IsPlainSqlName(db.hub_database)) {
    reader.AddError("parent.database.hub_database", "must be a plain name [A-Za-z0-9_] (1-64)");
  } else if (db.hub_database == db.database) {
    reader.AddError("parent.database.hub_database",
                    "must differ from parent.database.database (the panel's schema)");
  }
  db.connect_timeout = config.parent.connect_timeout;
  db.read_timeout = config.parent.request_timeout;
}

void ReadJournalApplyRoster(ConfigReader& reader, HubConfig& config) {
  config.journal_path = reader.GetString("journal.path", config.journal_path);
  if (config.journal_path.empty()) reader.AddError("journal.path", "must not be empty");
  config.keep_reports = reader.GetDuration("journal.keep_reports", config.keep_reports,
                                           absl::Hours(1), absl::Hours(24 * 3650));
  config.audit_max_bytes = static_cast<uint64_t>(
      reader.GetInt("journal.audit_max_bytes", static_cast<int64_t>(config.audit_max_bytes), 0,
                    int64_t{1} << 50));

  ApplierOptions& apply = config.apply;
  apply.cycle_interval = reader.GetDuration("apply.interval", absl::Seconds(1),
                                            absl::Milliseconds(10), absl::Hours(1));
  apply.max_apply_delay = reader.GetDuration("apply.max_apply_delay", absl::Seconds(60),
                                             absl::ZeroDuration(), absl::Hours(24));
  apply.urgent_margin_bytes = static_cast<uint64_t>(reader.GetInt(
      "apply.urgent_margin_bytes", int64_t{100} << 20, 0, int64_t{1} << 50));
  apply.urgent_horizon = reader.GetDuration("apply.urgent_horizon", apply.urgent_horizon,
                                            absl::ZeroDuration(), absl::Hours(24));
  apply.max_patches_per_minute = static_cast<uint32_t>(reader.GetInt(
      "apply.max_patches_per_minute", apply.max_patches_per_minute, 0, 100'000));

  config.roster_poll_interval = reader.GetDuration("roster.poll_interval", absl::Seconds(30),
                                                   absl::Seconds(1), absl::Hours(24));
  config.roster_max_list_share =
      reader.GetDouble("roster.max_list_share", config.roster_max_list_share, 0.0, 1.0);
  config.roster_usage_interval = reader.GetDuration("roster.usage_interval", absl::Seconds(120),
                                                    absl::ZeroDuration(), absl::Hours(24));
  config.roster_history_max_bytes = static_cast<uint64_t>(
      reader.GetInt("roster.history_max_bytes", static_cast<int64_t>(config.roster_history_max_bytes),
                    int64_t{1} << 16, int64_t{1} << 34));
}

void ReadMetrics(ConfigReader& reader, HubConfig& config) {
  config.metrics_listen = reader.GetString("metrics.listen", config.metrics_listen);
  if (config.metrics_listen.empty()) return;  // off
  std::string host;
  int port = 0;
  if (!SplitHostPort(config.metrics_listen, &host, &port)) {
    reader.AddError("metrics.listen",
                    absl::StrCat("must be \"host:port\", \"[ipv6]:port\" or \"\" (off), got \"",
                                 config.metrics_listen, "\""));
  } else if (!IsLoopbackHost(host)) {
    config.warnings.push_back(absl::StrCat(
        "metrics.listen = \"", config.metrics_listen,
        "\" is not loopback: node names and traffic totals are readable from the network"));
  }
}

void ReadNodes(ConfigReader& reader, HubConfig& config) {
  std::map<std::string, std::string> node_by_hash;
  for (const std::string& node_id : reader.TableKeys("nodes")) {
    const std::string key = absl::StrCat("nodes.", node_id);
    std::string hash = reader.GetString(key, "");
    if (!IsValidNodeId(node_id)) {
      reader.AddError(key, "node id must be 1-64 characters of A-Z a-z 0-9 _ -");
      continue;
    }
    if (!IsWellFormedTokenHash(hash)) {
      // Never echo the value: it may be a token pasted by mistake.
      reader.AddError(key, "must be \"sha256:<64 hex digits>\" (the hash of the node's token, "
                           "not the token itself)");
      continue;
    }
    absl::AsciiStrToLower(&hash);
    auto [it, inserted] = node_by_hash.emplace(hash, node_id);
    if (!inserted) {
      reader.AddError(key, absl::StrCat("same token hash as nodes.", it->second,
                                        " (each node needs its own token)"));
      continue;
    }
    config.node_token_hashes.emplace(node_id, hash);
  }
  if (config.node_token_hashes.empty()) {
    config.warnings.push_back("no [nodes] configured: every report will be refused");
  }
}

absl::StatusOr<HubConfig> ReadConfig(ConfigReader reader) {
  HubConfig config;
  config.source = reader.source_name();
  const std::string level = reader.GetEnum("log_level", "info", {"debug", "info", "warning", "error"});
  ParseLogLevel(level, &config.log_level);
  ReadListen(reader, config);
  ReadOperatorSocket(reader, config);
  ReadTls(reader, config);
  ReadParent(reader, config);
  ReadParentDatabase(reader, config);
  ReadJournalApplyRoster(reader, config);
  ReadNodes(reader, config);
  ReadMetrics(reader, config);
  if (absl::Status status = reader.Finish(); !status.ok()) return status;
  return config;
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  return IsLoopbackPeer(absl::StrCat("ipv4:", absl::string_view(host.data(), host.size()), ":0"));
}


std::string RedactedParentUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "(invalid url)";
  const size_t path = url.find('/', scheme + 3);
  if (path == std::string::npos) return url;
  return absl::StrCat(url.substr(0, path), "/...");
}

absl::StatusOr<HubConfig> LoadHubConfig(const std::string& path) {
  absl::StatusOr<ConfigReader> reader = ConfigReader::LoadFile(path);
  if (!reader.ok()) return reader.status();
  return ReadConfig(*std::move(reader));
}

absl::StatusOr<HubConfig> ParseHubConfig(std::string_view text, const std::string& source_name) {
  absl::StatusOr<ConfigReader> reader = ConfigReader::LoadString(text, source_name);
  if (!reader.ok()) return reader.status();
  return ReadConfig(*std::move(reader));
}

}  // namespace hsync::hub
