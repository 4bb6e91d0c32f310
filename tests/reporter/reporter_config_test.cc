// The reporter's TOML config: defaults, every key, and every bad value
// reported with its key; secrets read from files and never echoed.
#include "reporter/config/reporter_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/support/child_process.h"

namespace hsync::reporter {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ReporterConfigTest : public ::testing::Test {
 protected:
  ReporterConfigTest() : dir_(hsync::testing::MakeTempDir("rcfg")) {
    token_file_ = Write("token", "s3cr3t-token-value\n");
    password_file_ = Write("mysql_pass", "db-pass-XYZ\n");
  }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    chmod(path.c_str(), 0600);
    return path;
  }

  std::string Minimal(const std::string& extra = "") {
    return absl::StrCat("node_id = \"child-1\"\n", extra, "\n[hub]\naddress = \"hub.example.com:7443\"\n",
                        "token_file = \"", token_file_, "\"\n");
  }

  // The error text of a config expected to be rejected.
  std::string ErrorOf(const std::string& text) {
    auto config = ParseReporterConfig(text, "reporter.toml");
    EXPECT_FALSE(config.ok()) << text;
    return config.ok() ? "" : std::string(config.status().message());
  }

  std::string dir_, token_file_, password_file_;
};

TEST_F(ReporterConfigTest, MetricsListenDefaultsToLoopbackAndCanBeOffOrRemote) {
  auto config = ParseReporterConfig(Minimal(), "reporter.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics.listen, "127.0.0.1:7446");
  config = ParseReporterConfig(absl::StrCat(Minimal(), "[metrics]\nlisten = \"\"\n"), "reporter.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics.listen, "");
  // A central Prometheus may scrape a child over its private network.
  config = ParseReporterConfig(absl::StrCat(Minimal(), "[metrics]\nlisten = \"10.0.0.5:7446\"\n"),
                               "reporter.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics.listen, "10.0.0.5:7446");
  EXPECT_THAT(ErrorOf(absl::StrCat(Minimal(), "[metrics]\nlisten = \"7446\"\n")),
              HasSubstr("reporter.toml: metrics.listen: must be host:port"));
}

TEST_F(ReporterConfigTest, MinimalConfigGetsTheDocumentedDefaults) {
  auto config = ParseReporterConfig(Minimal(), "reporter.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_id, "child-1");
  EXPECT_EQ(config->hub.address, "hub.example.com:7443");
  EXPECT_FALSE(config->hub.plaintext);
  EXPECT_EQ(config->hub.token, "s3cr3t-token-value");
  EXPECT_EQ(config->mysql.socket, "/var/run/mysqld/mysqld.sock");
  EXPECT_EQ(config->mysql.user, "root");
  EXPECT_EQ(config->mysql.password, "");
  EXPECT_EQ(config->mysql.database, "hiddifypanel");
  EXPECT_EQ(config->mysql.state_database, "hiddify_sync");
  EXPECT_EQ(config->collect.interval, absl::Seconds(30));
  EXPECT_EQ(config->collect.min_report_bytes, 1'000'000u);
  EXPECT_EQ(config->collect.usage_mode, UsageMode::kFollow);
  EXPECT_TRUE(config->collect.baseline_existing_usage);
  EXPECT_EQ(config->outbox.merge_after_rows, 20);
  EXPECT_EQ(config->roster.remove_policy, RemovePolicy::kDisable);
  EXPECT_EQ(config->roster.guard_min, 10);
  EXPECT_DOUBLE_EQ(config->roster.guard_fraction, 0.25);
  EXPECT_EQ(config->apply.command, "/opt/hiddify-manager/install.sh apply_users --no-gui");
  EXPECT_EQ(config->apply.debounce, absl::Seconds(2));
  EXPECT_EQ(config->apply.busy_retry, absl::Seconds(3));
  EXPECT_TRUE(config->panel.core_sync);
  EXPECT_EQ(config->panel.address, "127.0.0.1:9000");
  EXPECT_EQ(config->panel.proxy_path, "");  // read from str_config
  EXPECT_EQ(config->panel.api_key, "");     // read from admin_user id 1
  EXPECT_EQ(config->status.listen, "127.0.0.1:7444");
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
}

TEST_F(ReporterConfigTest, EveryKeyIsRead) {
  const std::string text = absl::StrCat(
      "node_id = \"n2\"\nlog_level = \"debug\"\n"
      "[hub]\naddress = \"127.0.0.1:9000\"\nplaintext = true\ntoken_file = \"", token_file_, "\"\n"
      "[mysql]\nsocket = \"/tmp/x.sock\"\nuser = \"hiddifypanel\"\npassword_file = \"", password_file_,
      "\"\ndatabase = \"panel\"\nstate_database = \"sync_state\"\n"
      "[collect]\ninterval = \"5s\"\nmin_report_bytes = 0\nusage_mode = \"reset\"\n"
      "baseline_existing_usage = false\n"
      "[outbox]\nmerge_after_rows = 0\n"
      "[roster]\nremove_policy = \"delete\"\nguard_min = 3\nguard_fraction = 0.5\n"
      "[apply]\ncommand = \"\"\ndebounce = \"500ms\"\nmax_delay = \"5s\"\nbusy_retry = \"1s\"\n"
      "timeout = \"30s\"\n"
      "[panel]\ncore_sync = false\naddress = \"127.0.0.1:9100\"\napi_key_file = \"", token_file_,
      "\"\nproxy_path_admin_file = \"", password_file_, "\"\ntimeout = \"5s\"\n"
      "retry_initial = \"200ms\"\nretry_max = \"10s\"\n"
      "[status]\nlisten = \"[::1]:7555\"\n");
  auto config = ParseReporterConfig(text, "reporter.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->hub.plaintext);
  EXPECT_EQ(config->mysql.password, "db-pass-XYZ");
  EXPECT_EQ(config->mysql.user, "hiddifypanel");
  EXPECT_EQ(config->mysql.state_database, "sync_state");
  EXPECT_EQ(config->collect.interval, absl::Seconds(5));
  EXPECT_EQ(config->collect.min_report_bytes, 0u);
  EXPECT_EQ(config->collect.usage_mode, UsageMode::kReset);
  EXPECT_FALSE(config->collect.baseline_existing_usage);
  EXPECT_EQ(config->outbox.merge_after_rows, 0);
  EXPECT_EQ(config->roster.remove_policy, RemovePolicy::kDelete);
  EXPECT_EQ(config->roster.guard_min, 3);
  EXPECT_EQ(config->apply.command, "");
  EXPECT_EQ(config->apply.max_delay, absl::Seconds(5));
  EXPECT_EQ(config->apply.busy_retry, absl::Seconds(1));
  EXPECT_FALSE(config->panel.core_sync);
  EXPECT_EQ(config->panel.address, "127.0.0.1:9100");
  EXPECT_EQ(config->panel.api_key, "s3cr3t-token-value");
  EXPECT_EQ(config->panel.proxy_path, "db-pass-XYZ");
  EXPECT_EQ(config->panel.timeout, absl::Seconds(5));
  EXPECT_EQ(config->panel.retry_initial, absl::Milliseconds(200));
  EXPECT_EQ(config->panel.retry_max, absl::Seconds(10));
  EXPECT_EQ(config->apply.debounce, absl::Milliseconds(500));
  EXPECT_EQ(config->status.listen, "[::1]:7555");
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
}

TEST_F(ReporterConfigTest, EachBadValueNamesItsKey) {
  struct Case {
    std::string text;
    std::string key;
  };
  const std::string hub = absl::StrCat("[hub]\naddress = \"h:1\"\ntoken_file = \"", token_file_, "\"\n");
  const std::vector<Case> cases = {
      {absl::StrCat(hub), "node_id"},
      {absl::StrCat("node_id = \"bad id!\"\n", hub), "node_id"},
      {absl::StrCat("node_id = \"child.1\"\n", hub), "node_id"},
      {absl::StrCat("node_id = \"n\"\n[hub]\ntoken_file = \"", token_file_, "\"\n"), "hub.address"},
      {absl::StrCat("node_id = \"n\"\n[hub]\naddress = \"no-port\"\ntoken_file = \"", token_file_, "\"\n"),
       "hub.address"},
      {absl::StrCat("node_id = \"n\"\n[hub]\naddress = \"10.0.0.5:7443\"\nplaintext = true\ntoken_file = \"",
                    token_file_, "\"\n"),
       "hub.plaintext"},
      {"node_id = \"n\"\n[hub]\naddress = \"h:1\"\n", "hub.token_file"},
      {"node_id = \"n\"\n[hub]\naddress = \"h:1\"\ntoken_file = \"/nonexistent/token\"\n", "hub.token_file"},
      {absl::StrCat("node_id = \"n\"\n", hub, "cert_file = \"", token_file_, "\"\n"), "hub.key_file"},
      {absl::StrCat("node_id = \"n\"\n", hub, "ca_file = \"/nonexistent/ca.pem\"\n"), "hub.ca_file"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[mysql]\npassword_file = \"/nonexistent/p\"\n"),
       "mysql.password_file"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[mysql]\ndatabase = \"x; DROP\"\n"), "mysql.database"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[mysql]\nstate_database = \"hiddifypanel\"\n"),
       "mysql.state_database"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[collect]\ninterval = \"2s\"\n"), "collect.interval"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[collect]\ninterval = \"soon\"\n"), "collect.interval"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[collect]\nmin_report_bytes = -1\n"),
       "collect.min_report_bytes"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[collect]\nusage_mode = \"zero\"\n"), "collect.usage_mode"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[collect]\nbaseline_existing_usage = \"yes\"\n"),
       "collect.baseline_existing_usage"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[outbox]\nmerge_after_rows = 1\n"), "outbox.merge_after_rows"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[outbox]\nmerge_after_rows = -3\n"), "outbox.merge_after_rows"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[roster]\nremove_policy = \"purge\"\n"), "roster.remove_policy"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[roster]\nguard_fraction = 1.5\n"), "roster.guard_fraction"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[roster]\nguard_min = -2\n"), "roster.guard_min"},
      // The panel has no apply endpoint: the old url option is refused.
      {absl::StrCat("node_id = \"n\"\n", hub, "[apply]\nurl = \"http://127.0.0.1/\"\n"), "apply.url"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[apply]\nbusy_retry = \"0s\"\n"), "apply.busy_retry"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[panel]\naddress = \"no-port\"\n"), "panel.address"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[panel]\napi_key_file = \"/nonexistent/key\"\n"),
       "panel.api_key_file"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[apply]\ndebounce = \"1h\"\n"), "apply.debounce"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[status]\nlisten = \"0.0.0.0:7444\"\n"), "status.listen"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[status]\nlisten = \"10.1.2.3:7444\"\n"), "status.listen"},
      {absl::StrCat("node_id = \"n\"\nlog_level = \"loud\"\n", hub), "log_level"},
      {absl::StrCat("node_id = \"n\"\n", hub, "[collect]\nintervall = \"30s\"\n"), "collect.intervall"},
  };
  for (const Case& c : cases) {
    const std::string error = ErrorOf(c.text);
    EXPECT_THAT(error, HasSubstr(c.key + ":")) << c.text;
    EXPECT_THAT(error, HasSubstr("reporter.toml")) << c.text;
  }
}

TEST_F(ReporterConfigTest, UsageModeTakesEachOfItsThreeValuesAndNamesThemOnError) {
  const std::string head =
      absl::StrCat("node_id = \"n\"\n[hub]\naddress = \"h:1\"\ntoken_file = \"", token_file_,
                   "\"\n[collect]\nusage_mode = ");
  const std::pair<const char*, UsageMode> modes[] = {
      {"follow", UsageMode::kFollow}, {"watermark", UsageMode::kWatermark}, {"reset", UsageMode::kReset}};
  for (const auto& [name, mode] : modes) {
    auto config = ParseReporterConfig(absl::StrCat(head, "\"", name, "\"\n"), "reporter.toml");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->collect.usage_mode, mode) << name;
    EXPECT_STREQ(UsageModeName(mode), name);
  }
  EXPECT_THAT(ErrorOf(absl::StrCat(head, "\"auto\"\n")),
              HasSubstr("collect.usage_mode: must be one of follow, watermark, reset, got \"auto\""));
}

TEST_F(ReporterConfigTest, SecretsNeverAppearInErrors) {
  const std::string spaced = Write("spaced_token", "two words-secret\n");
  const std::string error = ErrorOf(absl::StrCat(
      "node_id = \"n\"\n[hub]\naddress = \"h:1\"\ntoken_file = \"", spaced, "\"\n[mysql]\npassword_file = \"",
      password_file_, "\"\n[collect]\ninterval = \"1s\"\n"));
  EXPECT_THAT(error, HasSubstr("hub.token_file"));
  EXPECT_THAT(error, Not(HasSubstr("words-secret")));
  EXPECT_THAT(error, Not(HasSubstr("db-pass-XYZ")));
  const std::string empty = Write("empty_token", "\n");
  EXPECT_THAT(ErrorOf(absl::StrCat("node_id = \"n\"\n[hub]\naddress = \"h:1\"\ntoken_file = \"", empty, "\"\n")),
              HasSubstr("hub.token_file"));
}

TEST_F(ReporterConfigTest, AllProblemsAreListedAtOnce) {
  const std::string error = ErrorOf(absl::StrCat(
      Minimal(), "[collect]\ninterval = \"1s\"\n[status]\nlisten = \"0.0.0.0:1\"\n"));
  EXPECT_THAT(error, HasSubstr("collect.interval"));
  EXPECT_THAT(error, HasSubstr("status.listen"));
}

TEST_F(ReporterConfigTest, MissingFileAndSyntaxErrorAreClear) {
  auto missing = LoadReporterConfig(dir_ + "/nope.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.toml"));
  auto broken = LoadReporterConfig(Write("broken.toml", "node_id = \n"));
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr("broken.toml"));
}

TEST(LoopbackTest, RecognisesLoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:7444"));
  EXPECT_TRUE(IsLoopbackAddress("127.1.2.3:1"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:7444"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:7444"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:7444"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:7444"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.1:7444"));
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1.evil.com:7444"));
  EXPECT_FALSE(IsLoopbackAddress("hub.example.com:7443"));
}

}  // namespace
}  // namespace hsync::reporter
