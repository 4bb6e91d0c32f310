// ConfigReader: typed getters, key-by-key errors, unknown keys, syntax errors,
// durations and secret files.
#include "common/config_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/child_process.h"

namespace hsync {
namespace {

using ::testing::HasSubstr;

ConfigReader Load(std::string_view text) {
  auto reader = ConfigReader::LoadString(text, "test.toml");
  EXPECT_TRUE(reader.ok()) << reader.status();
  return *std::move(reader);
}

std::string FinishMessage(const ConfigReader& reader) {
  const absl::Status status = reader.Finish();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

TEST(ConfigReaderTest, ReadsEveryTypeFromNestedTables) {
  ConfigReader reader = Load(R"(
name = "hub-1"
[parent]
url = "https://panel.example/abc"
timeout = "1m30s"
retries = 7
ratio = 0.25
verify = false
mode = "delete"
tags = ["a", "b"]
[parent.tls]
ca_file = "/etc/ca.pem"
)");
  EXPECT_EQ(reader.RequireString("name"), "hub-1");
  EXPECT_EQ(reader.GetString("parent.url", ""), "https://panel.example/abc");
  EXPECT_EQ(reader.GetDuration("parent.timeout", absl::Seconds(1), absl::Seconds(1), absl::Hours(1)),
            absl::Seconds(90));
  EXPECT_EQ(reader.GetInt("parent.retries", 3, 0, 10), 7);
  EXPECT_DOUBLE_EQ(reader.GetDouble("parent.ratio", 0.5, 0, 1), 0.25);
  EXPECT_FALSE(reader.GetBool("parent.verify", true));
  EXPECT_EQ(reader.GetEnum("parent.mode", "disable", {"disable", "delete"}), "delete");
  EXPECT_EQ(reader.GetStringArray("parent.tags"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(reader.GetOptionalString("parent.tls.ca_file"), "/etc/ca.pem");
  EXPECT_TRUE(reader.Has("parent.tls"));
  EXPECT_TRUE(reader.Has("parent.tls.ca_file"));
  EXPECT_FALSE(reader.Has("parent.tls.cert"));
  EXPECT_TRUE(reader.Finish().ok()) << reader.Finish();
}

TEST(ConfigReaderTest, AbsentKeysGiveDefaults) {
  ConfigReader reader = Load("");
  EXPECT_EQ(reader.GetString("a.b", "dflt"), "dflt");
  EXPECT_EQ(reader.GetOptionalString("a.c"), std::nullopt);
  EXPECT_EQ(reader.GetInt("n", 5, 0, 10), 5);
  EXPECT_DOUBLE_EQ(reader.GetDouble("d", 1.5, 0, 2), 1.5);
  EXPECT_TRUE(reader.GetBool("b", true));
  EXPECT_EQ(reader.GetDuration("t", absl::Seconds(3), absl::ZeroDuration(), absl::Hours(1)),
            absl::Seconds(3));
  EXPECT_EQ(reader.GetEnum("e", "x", {"x", "y"}), "x");
  EXPECT_TRUE(reader.GetStringArray("arr").empty());
  EXPECT_TRUE(reader.TableKeys("nodes").empty());
  EXPECT_TRUE(reader.Finish().ok());
}

TEST(ConfigReaderTest, RequiredKeyMissingIsAnError) {
  ConfigReader reader = Load("[parent]\n");
  EXPECT_EQ(reader.RequireString("parent.url"), "");
  EXPECT_EQ(FinishMessage(reader), "test.toml: parent.url: required");
}

TEST(ConfigReaderTest, RangeErrorsNameTheKeyAndTheRange) {
  ConfigReader reader = Load(R"(
port = 70000
ratio = 1.5
interval = "2h"
)");
  EXPECT_EQ(reader.GetInt("port", 443, 1, 65535), 443);
  EXPECT_DOUBLE_EQ(reader.GetDouble("ratio", 0.5, 0, 1), 0.5);
  EXPECT_EQ(reader.GetDuration("interval", absl::Seconds(30), absl::Seconds(1), absl::Hours(1)),
            absl::Seconds(30));
  const std::string message = FinishMessage(reader);
  EXPECT_THAT(message, HasSubstr("test.toml: port: must be between 1 and 65535, got 70000"));
  EXPECT_THAT(message, HasSubstr("test.toml: ratio: must be between 0 and 1, got 1.5"));
  EXPECT_THAT(message, HasSubstr("test.toml: interval: must be between 1s and 1h, got 2h"));
  // Every problem is reported, joined by "; ".
  EXPECT_EQ(std::count(message.begin(), message.end(), ';'), 2);
}

TEST(ConfigReaderTest, WrongTypesAreErrorsAndGiveDefaults) {
  ConfigReader reader = Load(R"(
s = 1
i = "x"
f = 1.5
b = "yes"
d = true
e = 3
arr = [1, 2]
notarr = "a"
tbl = 4
)");
  EXPECT_EQ(reader.GetString("s", "dflt"), "dflt");
  EXPECT_EQ(reader.GetInt("i", 9, 0, 10), 9);
  EXPECT_EQ(reader.GetInt("f", 9, 0, 10), 9);
  EXPECT_TRUE(reader.GetBool("b", true));
  EXPECT_EQ(reader.GetDuration("d", absl::Seconds(1), absl::ZeroDuration(), absl::Hours(1)),
            absl::Seconds(1));
  EXPECT_EQ(reader.GetEnum("e", "x", {"x"}), "x");
  EXPECT_TRUE(reader.GetStringArray("arr").empty());
  EXPECT_TRUE(reader.GetStringArray("notarr").empty());
  EXPECT_TRUE(reader.TableKeys("tbl").empty());
  const std::string message = FinishMessage(reader);
  EXPECT_THAT(message, HasSubstr("s: must be a string, not an integer"));
  EXPECT_THAT(message, HasSubstr("i: must be an integer, not a string"));
  EXPECT_THAT(message, HasSubstr("f: must be an integer, not a float"));
  EXPECT_THAT(message, HasSubstr("b: must be true or false, not a string"));
  EXPECT_THAT(message, HasSubstr("d: must be a duration"));
  EXPECT_THAT(message, HasSubstr("e: must be a string, not an integer"));
  EXPECT_THAT(message, HasSubstr("arr: element 0 must be a string, not an integer"));
  EXPECT_THAT(message, HasSubstr("notarr: must be an array of strings, not a string"));
  EXPECT_THAT(message, HasSubstr("tbl: must be a table, not an integer"));
}

TEST(ConfigReaderTest, IntegerIsAcceptedWhereAFloatIsExpected) {
  ConfigReader reader = Load("x = 2\n");
  EXPECT_DOUBLE_EQ(reader.GetDouble("x", 0, 0, 10), 2.0);
  EXPECT_TRUE(reader.Finish().ok());
}

TEST(ConfigReaderTest, EnumOutsideTheAllowedSetListsThem) {
  ConfigReader reader = Load("on_missing = \"explode\"\n");
  EXPECT_EQ(reader.GetEnum("on_missing", "disable", {"disable", "delete"}), "disable");
  EXPECT_EQ(FinishMessage(reader),
            "test.toml: on_missing: must be one of disable, delete, got \"explode\"");
}

TEST(ConfigReaderTest, UnknownKeysAreReported) {
  ConfigReader reader = Load(R"(
name = "x"
nmae = "typo"
[parent]
url = "u"
tiemout = 5
[typo_section]
a = 1
)");
  reader.GetString("name", "");
  reader.GetString("parent.url", "");
  const std::string message = FinishMessage(reader);
  EXPECT_THAT(message, HasSubstr("test.toml: nmae: unknown key"));
  EXPECT_THAT(message, HasSubstr("test.toml: parent.tiemout: unknown key"));
  EXPECT_THAT(message, HasSubstr("test.toml: typo_section: unknown key"));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("parent.url")));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("test.toml: name:")));
}

TEST(ConfigReaderTest, TableKeysListsChildrenAndChecksThemOneByOne) {
  ConfigReader reader = Load(R"(
[nodes.de1]
token_file = "/a"
[nodes.fr2]
token_file = "/b"
extra = 1
)");
  const std::vector<std::string> keys = reader.TableKeys("nodes");
  EXPECT_EQ(keys, (std::vector<std::string>{"de1", "fr2"}));
  for (const std::string& key : keys) reader.RequireString("nodes." + key + ".token_file");
  EXPECT_EQ(FinishMessage(reader), "test.toml: nodes.fr2.extra: unknown key");
}

TEST(ConfigReaderTest, EmptyTableReadWithTableKeysIsNotUnknown) {
  ConfigReader reader = Load("[nodes]\n");
  EXPECT_TRUE(reader.TableKeys("nodes").empty());
  EXPECT_TRUE(reader.Finish().ok()) << reader.Finish();
}

TEST(ConfigReaderTest, CallerErrorsAreIncluded) {
  ConfigReader reader = Load("url = \"http://x\"\n");
  reader.GetString("url", "");
  reader.AddError("url", "must start with https://");
  EXPECT_EQ(FinishMessage(reader), "test.toml: url: must start with https://");
}

TEST(ConfigReaderTest, SyntaxErrorNamesFileLineAndColumn) {
  auto reader = ConfigReader::LoadString("a = 1\nb = \"unterminated\n", "bad.toml");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(reader.status().message()), HasSubstr("bad.toml:2:"));
  EXPECT_THAT(std::string(reader.status().message()), HasSubstr("TOML syntax error"));

  auto duplicate = ConfigReader::LoadString("a = 1\n\n\na = 2\n", "dup.toml");
  ASSERT_FALSE(duplicate.ok());
  EXPECT_THAT(std::string(duplicate.status().message()), HasSubstr("dup.toml:4:"));
}

TEST(ConfigReaderTest, LoadFileReadsAndReportsMissingFiles) {
  const std::string dir = testing::MakeTempDir("hsync-config");
  const std::string path = dir + "/hub.toml";
  WriteFile(path, "[listen]\naddress = \"127.0.0.1:1\"\n", 0644);
  auto reader = ConfigReader::LoadFile(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(reader->source_name(), path);
  EXPECT_EQ(reader->GetString("listen.address", ""), "127.0.0.1:1");
  EXPECT_TRUE(reader->Finish().ok());

  WriteFile(dir + "/broken.toml", "x = [\n", 0644);
  auto broken = ConfigReader::LoadFile(dir + "/broken.toml");
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr(dir + "/broken.toml:"));

  auto missing = ConfigReader::LoadFile(dir + "/nope.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir + "/nope.toml"));
  unlink(path.c_str());
  unlink((dir + "/broken.toml").c_str());
  rmdir(dir.c_str());
}

TEST(ConfigReaderTest, ParsesDurations) {
  EXPECT_EQ(ParseConfigDuration("500ms").value(), absl::Milliseconds(500));
  EXPECT_EQ(ParseConfigDuration("30s").value(), absl::Seconds(30));
  EXPECT_EQ(ParseConfigDuration("5m").value(), absl::Minutes(5));
  EXPECT_EQ(ParseConfigDuration("1h").value(), absl::Hours(1));
  EXPECT_EQ(ParseConfigDuration("1m30s").value(), absl::Seconds(90));
  EXPECT_EQ(ParseConfigDuration("1h2m3s4ms").value(),
            absl::Hours(1) + absl::Minutes(2) + absl::Seconds(3) + absl::Milliseconds(4));
  EXPECT_EQ(ParseConfigDuration("45").value(), absl::Seconds(45));
  EXPECT_EQ(ParseConfigDuration("0").value(), absl::ZeroDuration());
  for (const char* bad : {"", "s", "-5s", "5", "1.5s", "5x", "5 s", "m5", "1d", "99999999999999999999s"}) {
    if (std::string(bad) == "5") continue;  // plain integers are seconds
    auto r = ParseConfigDuration(bad);
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("invalid duration"));
    }
  }
}

TEST(ConfigReaderTest, DurationFromIntegerSecondsAndBadString) {
  ConfigReader reader = Load("a = 15\nb = \"soon\"\nc = -1\n");
  EXPECT_EQ(reader.GetDuration("a", absl::ZeroDuration(), absl::ZeroDuration(), absl::Hours(1)),
            absl::Seconds(15));
  EXPECT_EQ(reader.GetDuration("b", absl::Seconds(2), absl::ZeroDuration(), absl::Hours(1)),
            absl::Seconds(2));
  EXPECT_EQ(reader.GetDuration("c", absl::Seconds(2), absl::ZeroDuration(), absl::Hours(1)),
            absl::Seconds(2));
  const std::string message = FinishMessage(reader);
  EXPECT_THAT(message, HasSubstr("b: invalid duration \"soon\""));
  EXPECT_THAT(message, HasSubstr("c: must be between 0 and 1h"));
}

TEST(ConfigReaderTest, SecretFileIsTrimmedAndErrorsNeverShowContent) {
  const std::string dir = testing::MakeTempDir("hsync-secret");
  const std::string path = dir + "/token";
  WriteFile(path, "  s3cr3t-token\n\n", 0600);
  auto secret = ReadSecretFile(path);
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, "s3cr3t-token");

  WriteFile(dir + "/empty", " \n\t\n", 0600);
  auto empty = ReadSecretFile(dir + "/empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr(dir + "/empty"));
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty"));

  auto missing = ReadSecretFile(dir + "/absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir + "/absent"));

  // A directory cannot be read as a secret; the error names the path only.
  auto directory = ReadSecretFile(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr(dir));
  unlink(path.c_str());
  unlink((dir + "/empty").c_str());
  rmdir(dir.c_str());
}

TEST(ConfigReaderTest, WorldReadableSecretFileIsReadWithAWarning) {
  const std::string dir = testing::MakeTempDir("hsync-secret");
  const std::string path = dir + "/token";
  WriteFile(path, "open-secret\n", 0644);
  // Capture stderr to see the warning, and check the secret is not in it.
  fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  const std::string log = dir + "/stderr";
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, STDERR_FILENO);
  auto secret = ReadSecretFile(path);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, "open-secret");
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr(path));
  EXPECT_THAT(text, HasSubstr("readable by group or others"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("open-secret")));
  unlink(path.c_str());
  unlink(log.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace hsync
