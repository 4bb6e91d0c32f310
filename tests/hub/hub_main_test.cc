// The hiddify-sync-hub command line: bad configurations exit 2 naming every
// bad key (never a secret), start failures exit 1, the start summary,
// SIGHUP reloads node tokens, SIGTERM exits 0.
#include <signal.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "hub/service/node_auth.h"
#include "tests/hub/hub_harness.h"

namespace hsync::hub::testing {
namespace {

using hsync::testing::BuiltBinary;
using hsync::testing::ChildProcess;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kApiKey[] = "5b1e0c2a-1f0e-4c47-9d0a-6a3c2e1b9f77";

class HubMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hsync::testing::MakeTempDir("hub_main");
    key_file_ = Write("api_key", kApiKey);
    chmod(key_file_.c_str(), 0600);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << text;
    return path;
  }

  std::string ValidConfig(int port, const std::string& nodes) {
    return absl::StrCat("listen = \"127.0.0.1:", port, "\"\nplaintext = true\n",
                        "operator_socket = \"", dir_, "/hub.sock\"\n[parent]\n",
                        "url = \"http://127.0.0.1:1/SeCrEtAdMiNpAtH\"\napi_key_file = \"", key_file_,
                        "\"\n[journal]\npath = \"", dir_, "/journal.db\"\n[metrics]\nlisten = \"\"\n[nodes]\n", nodes);
  }

  // Runs the hub to completion; returns its exit code, output in `*output`.
  int Run(const std::vector<std::string>& args, std::string* output) {
    const std::string log = absl::StrCat(dir_, "/run-", ++runs_, ".log");
    std::vector<std::string> argv = {BuiltBinary("hiddify-sync-hub")};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<ChildProcess> process = ChildProcess::Spawn(argv, log);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return -1;
    absl::StatusOr<int> code = process->Wait(absl::Seconds(20));
    EXPECT_TRUE(code.ok()) << code.status();
    *output = hsync::testing::ReadFileContents(log);
    return code.ok() ? *code : -1;
  }

  std::string dir_;
  std::string key_file_;
  int runs_ = 0;
};

TEST_F(HubMainTest, BadConfigurationExitsTwoNamingEveryBadKey) {
  const std::string token = "pasted-node-token-instead-of-hash";
  const std::string path = Write("bad.toml", absl::StrCat(
      "listen = \"0.0.0.0\"\nlog_level = \"chatty\"\n[parent]\napi_key_file = \"", key_file_,
      "\"\ntimeout = \"soon\"\n[roster]\npoll_intervall = \"5s\"\n[nodes]\nde-1 = \"", token, "\"\n"));
  std::string output;
  EXPECT_EQ(Run({"--config", path}, &output), 2);
  EXPECT_THAT(output, HasSubstr("invalid configuration"));
  EXPECT_THAT(output, HasSubstr("listen: must be \"host:port\""));
  EXPECT_THAT(output, HasSubstr("log_level: must be one of"));
  EXPECT_THAT(output, HasSubstr("parent.url: required"));
  EXPECT_THAT(output, HasSubstr("parent.timeout: invalid duration"));
  EXPECT_THAT(output, HasSubstr("roster.poll_intervall: unknown key"));
  EXPECT_THAT(output, HasSubstr("nodes.de-1: must be \"sha256:"));
  EXPECT_THAT(output, HasSubstr("tls.cert_file: required unless plaintext = true"));
  EXPECT_THAT(output, Not(HasSubstr(token)));
  EXPECT_THAT(output, Not(HasSubstr(kApiKey)));
}

TEST_F(HubMainTest, SyntaxErrorsMissingFilesAndBadFlagsExitTwo) {
  std::string output;
  EXPECT_EQ(Run({"--config", Write("syntax.toml", "listen = [\n")}, &output), 2);
  EXPECT_THAT(output, HasSubstr("syntax.toml:"));
  EXPECT_EQ(Run({"--config", absl::StrCat(dir_, "/missing.toml")}, &output), 2);
  EXPECT_THAT(output, HasSubstr("missing.toml"));
  EXPECT_EQ(Run({"--frobnicate"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("usage: hiddify-sync-hub"));
  EXPECT_EQ(Run({"--config"}, &output), 2);
}

TEST_F(HubMainTest, VersionPrintsAndExitsZero) {
  std::string output;
  EXPECT_EQ(Run({"--version"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("hiddify-sync-hub 0."));
}

TEST_F(HubMainTest, AJournalThatCannotBeOpenedExitsOne) {
  std::string text = ValidConfig(hsync::testing::PickFreePort(), "");
  text = absl::StrCat(text.substr(0, text.find("[journal]")), "[journal]\npath = \"/proc/no/journal.db\"\n");
  std::string output;
  EXPECT_EQ(Run({"--config", Write("journal.toml", text)}, &output), 1);
  EXPECT_THAT(output, HasSubstr("journal /proc/no/journal.db"));
}

TEST_F(HubMainTest, APortAlreadyInUseExitsOneInsteadOfSharingIt) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(1);
  auto first = HubProcess::Start(setup);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = std::stoi((*first)->target().substr((*first)->target().rfind(':') + 1));
  std::string output;
  EXPECT_EQ(Run({"--config", Write("second.toml", ValidConfig(port, ""))}, &output), 1);
  EXPECT_THAT(output, HasSubstr("cannot listen on 127.0.0.1:"));
}

TEST_F(HubMainTest, StartSummaryNamesAddressParentHostAndNodesButNoSecret) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(3);
  setup.parent_url = "http://127.0.0.1:1/SeCrEtAdMiNpAtH";
  setup.parent_api_key = kApiKey;
  auto hub = HubProcess::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  absl::StatusOr<int> code = (*hub)->Terminate();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  const std::string log = (*hub)->ReadLog();
  EXPECT_THAT(log, HasSubstr(absl::StrCat("serving on ", (*hub)->target())));
  EXPECT_THAT(log, HasSubstr("parent http://127.0.0.1:1/..."));
  EXPECT_THAT(log, HasSubstr("3 nodes"));
  EXPECT_THAT(log, HasSubstr("received Terminated, shutting down"));
  EXPECT_THAT(log, HasSubstr("stopped cleanly"));
  EXPECT_THAT(log, Not(HasSubstr(kApiKey)));
  EXPECT_THAT(log, Not(HasSubstr("SeCrEtAdMiNpAtH")));
  for (const auto& [node, token] : setup.node_tokens) EXPECT_THAT(log, Not(HasSubstr(token)));
}

TEST_F(HubMainTest, SighupReloadsNodeTokensAndEndsStreamsOfRemovedNodes) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(2);  // node-0, node-1
  auto started = HubProcess::Start(setup);
  ASSERT_TRUE(started.ok()) << started.status();
  HubProcess& hub = **started;
  auto stub = hub.Stub();
  RosterFollower node1_stream(stub.get(), "node-1", setup.node_tokens.at("node-1"));
  RosterFollower node0_stream(stub.get(), "node-0", setup.node_tokens.at("node-0"));
  SimulatedChild node0("node-0", setup.node_tokens.at("node-0"), hub.channel());
  ASSERT_TRUE(node0.Report({{TestUserUuid(1), 10}}).ok());

  // node-1 is revoked, node-2 enrolled; node-0 unchanged.
  const std::string token2 = "token-of-node-2-new";
  std::string config = hsync::testing::ReadFileContents(hub.config_path());
  config = config.substr(0, config.find("[nodes]"));
  absl::StrAppend(&config, "[nodes]\nnode-0 = \"", TokenHash(setup.node_tokens.at("node-0")),
                  "\"\nnode-2 = \"", TokenHash(token2), "\"\n");
  std::ofstream(hub.config_path()) << config;
  ASSERT_TRUE(hub.Signal(SIGHUP));
  ASSERT_TRUE(node1_stream.WaitUntil([](const RosterFollower::State& s) { return s.done; },
                                     absl::Seconds(10)));
  EXPECT_EQ(node1_stream.Snapshot().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  SimulatedChild node1("node-1", setup.node_tokens.at("node-1"), hub.channel());
  hiddify_sync::v1::ReportAck ack;
  EXPECT_EQ(node1.Send(node1.Next({{TestUserUuid(1), 10}}), &ack).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  SimulatedChild node2("node-2", token2, hub.channel());
  EXPECT_TRUE(node2.Report({{TestUserUuid(1), 10}}).ok());
  EXPECT_TRUE(node0.Report({{TestUserUuid(1), 10}}).ok());
  EXPECT_FALSE(node0_stream.Snapshot().done);  // other nodes' streams stay open
  EXPECT_THAT(hub.ReadLog(), HasSubstr("SIGHUP: nodes reloaded (2 nodes)"));
}

}  // namespace
}  // namespace hsync::hub::testing
