// The hub's TOML configuration: defaults, every key, every bad key reported
// at once with its reason, secrets never echoed.
#include "hub/config/hub_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "hub/service/node_auth.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kApiKey[] = "6098ea35-8cb2-4a08-ba15-2be25bc49cb6";

class HubConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("hub_config_test");
    key_file_ = Write("api_key", absl::StrCat(kApiKey, "\n"));
    chmod(key_file_.c_str(), 0600);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << text;
    return path;
  }

  // A valid plaintext config plus `extra` lines at the top level.
  std::string Minimal(const std::string& extra = "") {
    return absl::StrCat("listen = \"127.0.0.1:7443\"\nplaintext = true\n", extra,
                        "\n[parent]\nurl = \"https://panel.example.com/secretpath/\"\n",
                        "api_key_file = \"", key_file_, "\"\n");
  }

  std::string dir_;
  std::string key_file_;
};

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST_F(HubConfigTest, MinimalConfigGetsTheDocumentedDefaults) {
  absl::StatusOr<HubConfig> config = ParseHubConfig(Minimal(), "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:7443");
  EXPECT_TRUE(config->plaintext);
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_EQ(config->parent.base_url, "https://panel.example.com/secretpath");  // trailing slash dropped
  EXPECT_EQ(config->parent.api_key, kApiKey);  // read from the file, trimmed
  EXPECT_TRUE(config->parent.verify_tls);
  EXPECT_EQ(config->operator_socket, "/run/hiddify-sync/hub.sock");
  EXPECT_EQ(config->parent.request_timeout, absl::Seconds(20));
  EXPECT_EQ(config->journal_path, "/var/lib/hiddify-sync/hub/journal.db");
  EXPECT_EQ(config->apply.cycle_interval, absl::Seconds(1));
  EXPECT_EQ(config->apply.max_apply_delay, absl::Seconds(60));
  EXPECT_EQ(config->apply.urgent_margin_bytes, uint64_t{100} << 20);
  EXPECT_EQ(config->roster_poll_interval, absl::Seconds(30));
  EXPECT_TRUE(config->node_token_hashes.empty());
  EXPECT_THAT(config->warnings, ::testing::Contains(HasSubstr("no [nodes]")));
}

TEST_F(HubConfigTest, MetricsListenDefaultsToLoopbackCanBeOffAndWarnsOffLoopback) {
  auto config = ParseHubConfig(Minimal(), "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics_listen, "127.0.0.1:7445");
  auto text = [this](const std::string& listen) {
    return absl::StrCat(Minimal(), "[metrics]\nlisten = \"", listen, "\"\n");
  };
  config = ParseHubConfig(text(""), "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics_listen, "");
  config = ParseHubConfig(text("0.0.0.0:9100"), "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->warnings, ::testing::Contains(HasSubstr("metrics.listen = \"0.0.0.0:9100\" is not loopback")));
  config = ParseHubConfig(text("9100"), "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), HasSubstr("hub.toml: metrics.listen: must be \"host:port\""));
}

TEST_F(HubConfigTest, TheOldVerifyTlsKeyIsRefusedPointingToInsecureParentTls) {
  auto config = ParseHubConfig(absl::StrCat(Minimal(), "verify_tls = false\n"), "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()),
              HasSubstr("hub.toml: parent.verify_tls: no longer exists; use insecure_parent_tls = true"));
  EXPECT_THAT(Message(config.status()), Not(HasSubstr("unknown key")));
}

TEST_F(HubConfigTest, DefaultListenAddressIsAllInterfacesPort7443) {
  const std::string text = absl::StrCat("plaintext = true\n[parent]\nurl = \"https://p.example/x\"\n",
                                        "api_key_file = \"", key_file_, "\"\n");
  absl::StatusOr<HubConfig> config = ParseHubConfig(text, "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "0.0.0.0:7443");
  // Plaintext off loopback is allowed but warned about.
  EXPECT_THAT(config->warnings, ::testing::Contains(HasSubstr("plaintext = true on a non-loopback")));
}

TEST_F(HubConfigTest, ReadsEveryKey) {
  const std::string cert = Write("cert.pem", "CERT");
  const std::string key = Write("key.pem", "KEY");
  const std::string ca = Write("ca.pem", "CA");
  const std::string parent_ca = Write("parent_ca.pem", "PCA");
  const std::string hash_a = TokenHash("token-a");
  const std::string hash_b = TokenHash("token-b");
  const std::string text = absl::StrCat(
      "log_level = \"debug\"\nlisten = \"[::]:9443\"\ninsecure_parent_tls = true\n",
      "[tls]\ncert_file = \"", cert, "\"\nkey_file = \"", key, "\"\nclient_ca_file = \"", ca,
      "\"\nrequire_client_cert = true\n",
      "[parent]\nurl = \"https://panel.example.com/p\"\napi_key_file = \"", key_file_,
      "\"\nca_file = \"", parent_ca, "\"\ntimeout = \"45s\"\n",
      "connect_timeout = \"2s\"\n",
      "[journal]\npath = \"/tmp/j.db\"\nkeep_reports = \"48h\"\n",
      "[apply]\ninterval = \"250ms\"\nmax_apply_delay = \"5m\"\nurgent_margin_bytes = 1048576\n",
      "[roster]\npoll_interval = \"10s\"\n",
      "[nodes]\nde-1 = \"", hash_a, "\"\n\"fr_2\" = \"", hash_b, "\"\n");
  absl::StatusOr<HubConfig> config = ParseHubConfig(text, "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->listen, "[::]:9443");
  EXPECT_FALSE(config->plaintext);
  EXPECT_EQ(config->tls.cert_file, cert);
  EXPECT_EQ(config->tls.key_file, key);
  EXPECT_EQ(config->tls.client_ca_file, ca);
  EXPECT_TRUE(config->tls.require_client_cert);
  EXPECT_FALSE(config->parent.verify_tls);
  EXPECT_EQ(config->parent.ca_file, parent_ca);
  EXPECT_EQ(config->parent.request_timeout, absl::Seconds(45));
  EXPECT_EQ(config->parent.connect_timeout, absl::Seconds(2));
  EXPECT_EQ(config->journal_path, "/tmp/j.db");
  EXPECT_EQ(config->keep_reports, absl::Hours(48));
  EXPECT_EQ(config->apply.cycle_interval, absl::Milliseconds(250));
  EXPECT_EQ(config->apply.max_apply_delay, absl::Minutes(5));
  EXPECT_EQ(config->apply.urgent_margin_bytes, 1048576u);
  EXPECT_EQ(config->roster_poll_interval, absl::Seconds(10));
  ASSERT_EQ(config->node_token_hashes.size(), 2u);
  EXPECT_EQ(config->node_token_hashes.at("de-1"), hash_a);
  EXPECT_EQ(config->node_token_hashes.at("fr_2"), hash_b);
  EXPECT_THAT(config->warnings, ::testing::Contains(HasSubstr("insecure_parent_tls = true")));
}

TEST_F(HubConfigTest, EveryBadKeyIsReportedAtOnceWithItsReason) {
  const std::string text = absl::StrCat(
      "log_level = \"loud\"\nlisten = \"nohostport\"\nplaintext = \"yes\"\n",
      "[parent]\nurl = \"ftp://panel\"\n",
      "[apply]\ninterval = \"5 parsecs\"\nmax_apply_delay = -3\n",
      "[roster]\npoll_interval = \"0s\"\n",
      "[nodes]\ngood = \"", TokenHash("t"), "\"\n\"bad node!\" = \"", TokenHash("u"), "\"\n",
      "short = \"sha256:abc\"\n",
      "[journal]\npaht = \"/typo\"\n");
  absl::StatusOr<HubConfig> config = ParseHubConfig(text, "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message = Message(config.status());
  EXPECT_THAT(message, HasSubstr("hub.toml: log_level: must be one of"));
  EXPECT_THAT(message, HasSubstr("hub.toml: listen: must be \"host:port\""));
  EXPECT_THAT(message, HasSubstr("hub.toml: plaintext: must be true or false"));
  EXPECT_THAT(message, HasSubstr("hub.toml: parent.url: must start with https://"));
  EXPECT_THAT(message, HasSubstr("hub.toml: parent.api_key_file: required"));
  EXPECT_THAT(message, HasSubstr("hub.toml: apply.interval: invalid duration"));
  EXPECT_THAT(message, HasSubstr("hub.toml: apply.max_apply_delay: must be between"));
  EXPECT_THAT(message, HasSubstr("hub.toml: roster.poll_interval: must be between"));
  EXPECT_THAT(message, HasSubstr("hub.toml: nodes.bad node!: node id must be"));
  EXPECT_THAT(message, HasSubstr("hub.toml: nodes.short: must be \"sha256:<64 hex digits>\""));
  EXPECT_THAT(message, HasSubstr("hub.toml: journal.paht: unknown key"));
  EXPECT_THAT(message, Not(HasSubstr("nodes.good")));
}

TEST_F(HubConfigTest, TlsIsRequiredUnlessPlaintextIsExplicitlyTrue) {
  const std::string text = absl::StrCat("[parent]\nurl = \"https://p.example/x\"\napi_key_file = \"",
                                        key_file_, "\"\n");
  absl::StatusOr<HubConfig> config = ParseHubConfig(text, "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), HasSubstr("tls.cert_file: required unless plaintext = true"));
  EXPECT_THAT(Message(config.status()), HasSubstr("tls.key_file: required unless plaintext = true"));
}

TEST_F(HubConfigTest, UnreadableTlsFilesAndClientCertWithoutCaAreErrors) {
  const std::string text = absl::StrCat(
      "[tls]\ncert_file = \"", dir_, "/missing-cert.pem\"\nkey_file = \"", dir_,
      "/missing-key.pem\"\nrequire_client_cert = true\n",
      "[parent]\nurl = \"https://p.example/x\"\napi_key_file = \"", key_file_, "\"\n");
  absl::StatusOr<HubConfig> config = ParseHubConfig(text, "hub.toml");
  ASSERT_FALSE(config.ok());
  const std::string message = Message(config.status());
  EXPECT_THAT(message, HasSubstr("tls.cert_file: cannot read file"));
  EXPECT_THAT(message, HasSubstr("tls.key_file: cannot read file"));
  EXPECT_THAT(message, HasSubstr("tls.require_client_cert: needs tls.client_ca_file"));
}

TEST_F(HubConfigTest, ApiKeyFileProblemsNameThePathNeverTheKey) {
  const std::string empty = Write("empty_key", "  \n");
  std::string text = absl::StrCat("plaintext = true\nlisten = \"127.0.0.1:1\"\n[parent]\n",
                                  "url = \"https://p.example/x\"\napi_key_file = \"", empty, "\"\n");
  absl::StatusOr<HubConfig> config = ParseHubConfig(text, "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), HasSubstr(absl::StrCat("parent.api_key_file: secret file ",
                                                              empty, " is empty")));
  // A config with a good key file but another error never shows the key.
  config = ParseHubConfig(Minimal("log_level = 3"), "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), Not(HasSubstr(kApiKey)));
}

TEST_F(HubConfigTest, ATokenPastedInsteadOfItsHashIsRefusedWithoutEchoingIt) {
  const std::string token = "s3cr3t-node-token-0123456789";
  absl::StatusOr<HubConfig> config =
      ParseHubConfig(Minimal(absl::StrCat("[nodes]\nde-1 = \"", token, "\"\n")), "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), HasSubstr("nodes.de-1: must be \"sha256:"));
  EXPECT_THAT(Message(config.status()), Not(HasSubstr(token)));
}

TEST_F(HubConfigTest, TwoNodesWithTheSameTokenAreRefused) {
  const std::string hash = TokenHash("shared");
  std::string upper = hash;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  absl::StatusOr<HubConfig> config = ParseHubConfig(
      Minimal(absl::StrCat("[nodes]\na = \"", hash, "\"\nb = \"", upper, "\"\n")), "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), HasSubstr("nodes.b: same token hash as nodes.a"));
}

TEST_F(HubConfigTest, TomlSyntaxErrorsNameLineAndColumn) {
  absl::StatusOr<HubConfig> config = ParseHubConfig("listen = \n", "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), HasSubstr("hub.toml:1:"));
}

TEST_F(HubConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<HubConfig> config = LoadHubConfig(absl::StrCat(dir_, "/nope.toml"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(HubConfigTest, LoadsFromAFile) {
  const std::string path = Write("hub.toml", Minimal());
  absl::StatusOr<HubConfig> config = LoadHubConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->source, path);
}

TEST_F(HubConfigTest, JournalAuditMaxBytesDefaultsTo1GiBAndZeroMeansAgeOnly) {
  auto config = ParseHubConfig(Minimal(), "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->audit_max_bytes, uint64_t{1} << 30);
  config = ParseHubConfig(absl::StrCat(Minimal(), "[journal]\naudit_max_bytes = 0\n"), "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->audit_max_bytes, 0u);
  config = ParseHubConfig(absl::StrCat(Minimal(), "[journal]\naudit_max_bytes = 5368709120\n"),
                          "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->audit_max_bytes, uint64_t{5} << 30);
  config = ParseHubConfig(absl::StrCat(Minimal(), "[journal]\naudit_max_bytes = -1\n"), "hub.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()), HasSubstr("hub.toml: journal.audit_max_bytes: must be between"));
}

TEST(HubConfigHelpersTest, LoopbackHosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("::"));
}

TEST(HubConfigHelpersTest, RedactedParentUrlHidesTheAdminPath) {
  EXPECT_EQ(RedactedParentUrl("https://panel.example.com/Xy7secret/"), "https://panel.example.com/...");
  EXPECT_EQ(RedactedParentUrl("http://127.0.0.1:8080/p"), "http://127.0.0.1:8080/...");
  EXPECT_EQ(RedactedParentUrl("https://panel.example.com"), "https://panel.example.com");
}

TEST_F(HubConfigTest, OperatorSocketIsAnAbsoluteShortPathOrOff) {
  absl::StatusOr<HubConfig> off = ParseHubConfig(Minimal("operator_socket = \"\""), "hub.toml");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->operator_socket, "");
  absl::StatusOr<HubConfig> custom =
      ParseHubConfig(Minimal("operator_socket = \"/run/hsync/x.sock\""), "hub.toml");
  ASSERT_TRUE(custom.ok()) << custom.status();
  EXPECT_EQ(custom->operator_socket, "/run/hsync/x.sock");
  EXPECT_THAT(Message(ParseHubConfig(Minimal("operator_socket = \"hub.sock\""), "hub.toml").status()),
              HasSubstr("hub.toml: operator_socket: must be an absolute path"));
  EXPECT_THAT(Message(ParseHubConfig(Minimal("operator_socket = \"/run/hsync/\""), "hub.toml").status()),
              HasSubstr("operator_socket: must name the socket file"));
  const std::string long_path = absl::StrCat("/", std::string(120, 'x'), ".sock");
  EXPECT_THAT(Message(ParseHubConfig(Minimal(absl::StrCat("operator_socket = \"", long_path, "\"")),
                                     "hub.toml")
                          .status()),
              HasSubstr("operator_socket: path is 126 bytes long; a unix socket path may have at most 107"));
}

}  // namespace
}  // namespace hsync::hub
