// The example configurations shipped in deploy/ stay true to the daemons'
// own config loaders: they load as shipped (with their secret files present),
// every commented "# key = value" line names a real key whose value is the
// loader's actual default, the example values load too, and every key the
// loaders read is documented in its example.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "hub/config/hub_config.h"
#include "reporter/config/reporter_config.h"
#include "tests/support/child_process.h"

namespace {

const std::string kSource = HSYNC_SOURCE_DIR;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ASSERT_TRUE(out.good()) << "cannot write " << path;
  ::chmod(path.c_str(), mode);
}

// A temp dir standing in for /etc/hiddify-sync, with every file the examples
// refer to (secrets non-empty, as an operator fills them).
struct FakeEtc {
  std::string dir = hsync::testing::MakeTempDir("hsync-config-examples");
  FakeEtc() {
    ::mkdir((dir + "/tls").c_str(), 0755);
    WriteFile(dir + "/parent-api-key", "11111111-2222-3333-4444-555555555555\n");
    WriteFile(dir + "/hub-token", "node-token-abc\n");
    WriteFile(dir + "/mysql-password", "db-password\n");
    WriteFile(dir + "/panel-api-key", "22222222-3333-4444-5555-666666666666\n");
    WriteFile(dir + "/panel-admin-path", "AdminPathXyz\n");
    for (const char* pem : {"/tls/hub.pem", "/tls/ca.pem"}) {
      WriteFile(dir + pem, "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n", 0644);
    }
    WriteFile(dir + "/tls/hub.key", "-----BEGIN PRIVATE KEY-----\nMA==\n-----END PRIVATE KEY-----\n");
  }
  ~FakeEtc() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  // The example's /etc/hiddify-sync/ paths moved into this dir.
  std::string Rebase(const std::string& text) const {
    return absl::StrReplaceAll(text, {{"/etc/hiddify-sync/", dir + "/"}});
  }
};

// "# key = value" (a commented setting) -> key; prose never has this shape.
const std::regex kCommentedSetting(R"(^#\s?([A-Za-z0-9_.-]+)\s*=\s*(.+)$)");
const std::regex kSetting(R"(^#?\s?([A-Za-z0-9_.-]+)\s*=.*$)");
const std::regex kSection(R"(^\[([A-Za-z0-9_.-]+)\]\s*$)");

// Uncomments every commented setting except those whose dotted key
// ("section.key") is in `skip`; with `only` non-empty, just those.
std::string Uncomment(const std::string& text, const std::set<std::string>& skip,
                      const std::set<std::string>& only = {}) {
  std::istringstream in(text);
  std::string out, line, section;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, kSection)) section = m[1];
    if (std::regex_match(line, m, kCommentedSetting)) {
      const std::string key = section.empty() ? std::string(m[1]) : absl::StrCat(section, ".", m[1].str());
      if (!skip.count(key) && (only.empty() || only.count(key))) {
        line = absl::StrCat(m[1].str(), " = ", m[2].str());
      }
    }
    out += line + "\n";
  }
  return out;
}

// Every dotted key an example documents, commented or not, plus its tables.
std::set<std::string> DocumentedKeys(const std::string& text) {
  std::set<std::string> keys;
  std::istringstream in(text);
  std::string line, section;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, kSection)) {
      section = m[1];
      keys.insert(section);
    } else if (std::regex_match(line, m, kSetting)) {
      keys.insert(section.empty() ? std::string(m[1]) : absl::StrCat(section, ".", m[1].str()));
    }
  }
  return keys;
}

// Every literal key a loader's source reads ("parent.timeout", "nodes", ...).
std::set<std::string> KeysReadBy(const std::string& source_file) {
  static const std::regex kRead(
      R"(\.(GetString|GetOptionalString|RequireString|GetInt|GetDouble|GetBool|GetDuration|GetEnum|GetStringArray|TableKeys)\(\s*"([A-Za-z0-9_.]+)\")");
  const std::string code = ReadFile(source_file);
  std::set<std::string> keys;
  for (std::sregex_iterator it(code.begin(), code.end(), kRead), end; it != end; ++it) {
    keys.insert((*it)[2]);
  }
  return keys;
}

// The hub settings a commented default may set, as one comparable string.
std::string HubSettings(const hsync::hub::HubConfig& c) {
  return absl::StrCat(
      "log_level=", static_cast<int>(c.log_level), " listen=", c.listen, " plaintext=", c.plaintext,
      " tls=", c.tls.cert_file, ",", c.tls.key_file, ",", c.tls.client_ca_file, ",",
      c.tls.require_client_cert, " parent=", c.parent.base_url, ",", c.parent_api_key_file, ",",
      c.parent.verify_tls, ",", c.parent.ca_file, ",", absl::FormatDuration(c.parent.request_timeout),
      ",", absl::FormatDuration(c.parent.connect_timeout), " journal=", c.journal_path, ",",
      absl::FormatDuration(c.keep_reports), " apply=", absl::FormatDuration(c.apply.cycle_interval),
      ",", absl::FormatDuration(c.apply.max_apply_delay), ",", c.apply.urgent_margin_bytes, ",",
      absl::FormatDuration(c.apply.urgent_horizon), ",", c.apply.max_patches_per_minute,
      " roster=", absl::FormatDuration(c.roster_poll_interval), ",", c.roster_max_list_share, ",",
      absl::FormatDuration(c.roster_usage_interval), ",", c.roster_history_max_bytes,
      " metrics=", c.metrics_listen,
      " nodes=", c.node_token_hashes.size());
}

std::string ReporterSettings(const hsync::reporter::ReporterConfig& c) {
  return absl::StrCat(
      "node_id=", c.node_id, " log_level=", static_cast<int>(c.log_level), " hub=", c.hub.address,
      ",", c.hub.plaintext, ",", c.hub.ca_file, ",", c.hub.cert_file, ",", c.hub.key_file, ",",
      c.hub.server_name, " mysql=", c.mysql.socket, ",", c.mysql.user, ",", c.mysql.password.size(),
      ",", c.mysql.database, ",", c.mysql.state_database,
      " collect=", absl::FormatDuration(c.collect.interval), ",", c.collect.min_report_bytes, ",",
      static_cast<int>(c.collect.usage_mode), ",", c.collect.baseline_existing_usage,
      " outbox=", c.outbox.merge_after_rows,
      " roster=", static_cast<int>(c.roster.remove_policy), ",", c.roster.guard_min, ",",
      c.roster.guard_fraction, " apply=", c.apply.command, ",",
      absl::FormatDuration(c.apply.debounce), ",", absl::FormatDuration(c.apply.max_delay), ",",
      absl::FormatDuration(c.apply.busy_retry), ",", absl::FormatDuration(c.apply.timeout),
      " panel=", c.panel.core_sync, ",", c.panel.address, ",", c.panel.proxy_path.size(), ",",
      c.panel.api_key.size(), ",", absl::FormatDuration(c.panel.timeout), ",",
      absl::FormatDuration(c.panel.retry_initial), ",", absl::FormatDuration(c.panel.retry_max),
      " status=", c.status.listen,
      " metrics=", c.metrics.listen);
}

TEST(HubExampleConfig, LoadsAsShippedWithTlsAndTheApiKeyFromItsFile) {
  FakeEtc etc;
  const std::string path = etc.dir + "/hub.toml";
  WriteFile(path, etc.Rebase(ReadFile(kSource + "/deploy/hub.toml.example")));
  absl::StatusOr<hsync::hub::HubConfig> config = hsync::hub::LoadHubConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->plaintext);
  EXPECT_EQ(config->tls.cert_file, etc.dir + "/tls/hub.pem");
  EXPECT_EQ(config->parent.api_key, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(config->journal_path, "/var/lib/hiddify-sync/hub/journal.db");
  EXPECT_TRUE(config->node_token_hashes.empty());
}

TEST(HubExampleConfig, CommentedDefaultsAreTheLoadersDefaults) {
  FakeEtc etc;
  const std::string text = etc.Rebase(ReadFile(kSource + "/deploy/hub.toml.example"));
  // nodes.child-1 is an example line, not a default.
  const std::set<std::string> examples = {"nodes.child-1"};
  auto shipped = hsync::hub::ParseHubConfig(text, "shipped");
  auto uncommented = hsync::hub::ParseHubConfig(Uncomment(text, examples), "uncommented");
  ASSERT_TRUE(shipped.ok()) << shipped.status();
  ASSERT_TRUE(uncommented.ok()) << uncommented.status();
  EXPECT_EQ(HubSettings(*shipped), HubSettings(*uncommented));
}

TEST(HubExampleConfig, ExampleNodeLineIsAValidNode) {
  FakeEtc etc;
  const std::string text = etc.Rebase(ReadFile(kSource + "/deploy/hub.toml.example"));
  auto config = hsync::hub::ParseHubConfig(Uncomment(text, {}, {"nodes.child-1"}), "with-node");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_token_hashes.count("child-1"), 1u);
}

TEST(HubExampleConfig, AsInstalledWithAnEmptyApiKeyItRefusesNamingTheKey) {
  FakeEtc etc;
  WriteFile(etc.dir + "/parent-api-key", "");  // what install.sh creates
  const std::string path = etc.dir + "/hub.toml";
  WriteFile(path, etc.Rebase(ReadFile(kSource + "/deploy/hub.toml.example")));
  auto config = hsync::hub::LoadHubConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("parent.api_key_file"), std::string::npos)
      << config.status();
}

TEST(HubExampleConfig, DocumentsEveryKeyTheLoaderReads) {
  const std::set<std::string> documented = DocumentedKeys(ReadFile(kSource + "/deploy/hub.toml.example"));
  const std::set<std::string> read = KeysReadBy(kSource + "/hub/config/hub_config.cc");
  ASSERT_GT(read.size(), 15u) << "the key scan of hub_config.cc found too little";
  for (const std::string& key : read) {
    EXPECT_TRUE(documented.count(key)) << "hub.toml.example does not document " << key;
  }
}

TEST(ReporterExampleConfig, LoadsAsShippedWithTokenAndCaFromTheirFiles) {
  FakeEtc etc;
  const std::string path = etc.dir + "/reporter.toml";
  WriteFile(path, etc.Rebase(ReadFile(kSource + "/deploy/reporter.toml.example")));
  auto config = hsync::reporter::LoadReporterConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->hub.token, "node-token-abc");
  EXPECT_FALSE(config->hub.ca_pem.empty());
  EXPECT_FALSE(config->hub.plaintext);
  EXPECT_EQ(config->apply.command, "/opt/hiddify-manager/install.sh apply_users --no-gui");
  EXPECT_TRUE(config->panel.core_sync);
  EXPECT_TRUE(config->panel.api_key.empty());  // read from admin_user id 1 at run time
  auto status = hsync::reporter::LoadStatusListen(path);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->listen, "127.0.0.1:7444");
}

TEST(ReporterExampleConfig, CommentedDefaultsAreTheLoadersDefaults) {
  FakeEtc etc;
  const std::string text = etc.Rebase(ReadFile(kSource + "/deploy/reporter.toml.example"));
  // Example values (not defaults): the panel overrides and an optional password.
  const std::set<std::string> examples = {"panel.proxy_path_admin_file", "panel.api_key_file",
                                          "mysql.password_file"};
  auto shipped = hsync::reporter::ParseReporterConfig(text, "shipped");
  auto uncommented = hsync::reporter::ParseReporterConfig(Uncomment(text, examples), "uncommented");
  ASSERT_TRUE(shipped.ok()) << shipped.status();
  ASSERT_TRUE(uncommented.ok()) << uncommented.status();
  EXPECT_EQ(ReporterSettings(*shipped), ReporterSettings(*uncommented));
}

TEST(ReporterExampleConfig, ExamplePanelOverridesAndPasswordFileLoad) {
  FakeEtc etc;
  const std::string text = etc.Rebase(ReadFile(kSource + "/deploy/reporter.toml.example"));
  auto config = hsync::reporter::ParseReporterConfig(
      Uncomment(text, {},
                {"panel.proxy_path_admin_file", "panel.api_key_file", "mysql.password_file"}),
      "overrides");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->panel.api_key, "22222222-3333-4444-5555-666666666666");
  EXPECT_EQ(config->panel.proxy_path, "AdminPathXyz");
  EXPECT_EQ(config->mysql.password, "db-password");
}

TEST(ReporterExampleConfig, AsInstalledWithAnEmptyTokenItRefusesNamingTheKey) {
  FakeEtc etc;
  WriteFile(etc.dir + "/hub-token", "");  // what install.sh creates
  auto config = hsync::reporter::ParseReporterConfig(
      etc.Rebase(ReadFile(kSource + "/deploy/reporter.toml.example")), "installed");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("hub.token_file"), std::string::npos) << config.status();
}

TEST(ReporterExampleConfig, DocumentsEveryKeyTheLoaderReads) {
  const std::set<std::string> documented =
      DocumentedKeys(ReadFile(kSource + "/deploy/reporter.toml.example"));
  const std::set<std::string> read = KeysReadBy(kSource + "/reporter/config/reporter_config.cc");
  ASSERT_GT(read.size(), 20u) << "the key scan of reporter_config.cc found too little";
  for (const std::string& key : read) {
    EXPECT_TRUE(documented.count(key)) << "reporter.toml.example does not document " << key;
  }
}

// The README's configuration reference: the text between `start` and `end`.
std::string ReadmeSection(const std::string& start, const std::string& end) {
  const std::string readme = ReadFile(kSource + "/README.md");
  const size_t from = readme.find(start);
  const size_t to = readme.find(end, from == std::string::npos ? 0 : from);
  if (from == std::string::npos || to == std::string::npos) return "";
  return readme.substr(from, to - from);
}

// Every key a loader reads is in its README table as `key` (a table such as
// [nodes] as `nodes.<...>`).
void ExpectReadmeNamesEveryKey(const std::string& section, const std::string& loader) {
  ASSERT_FALSE(section.empty()) << "README.md has no configuration reference section";
  for (const std::string& key : KeysReadBy(kSource + loader)) {
    const bool named = section.find("`" + key + "`") != std::string::npos ||
                       section.find("`" + key + ".") != std::string::npos;
    EXPECT_TRUE(named) << "README.md's configuration reference does not name " << key;
  }
}

TEST(ReadmeConfigReference, NamesEveryHubKey) {
  ExpectReadmeNamesEveryKey(ReadmeSection("**`/etc/hiddify-sync/hub.toml`**",
                                          "**`/etc/hiddify-sync/reporter.toml`**"),
                            "/hub/config/hub_config.cc");
}

TEST(ReadmeConfigReference, NamesEveryReporterKey) {
  ExpectReadmeNamesEveryKey(ReadmeSection("**`/etc/hiddify-sync/reporter.toml`**",
                                          "### Watching it"),
                            "/reporter/config/reporter_config.cc");
}

}  // namespace
