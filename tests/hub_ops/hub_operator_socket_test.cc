// No caller is trusted for its TCP address (issue 10), with the real hub
// binary and real sockets: through a loopback TCP forwarder (as haproxy in
// front of port 443 would be) and directly on the hub's port, GetRoster and
// GetStatus without a token are UNAUTHENTICATED and work with a node token;
// failed authentications from loopback are rate-limited after 10. Operators
// use the unix operator socket instead: mode 0600 in a 0700 directory the hub
// creates, GetStatus/GetRoster, health and reflection without a token there
// (reports and roster streams still need one), `hiddify-sync-hub status`
// through it as root and a clear "run as root" for anyone else, a stale
// socket replaced at start, a live one never taken over.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "tests/e2e/tcp_proxy.h"
#include "tests/hub/grpc_probes.h"
#include "tests/hub/hub_harness.h"
#include "tests/support/child_process.h"

namespace hsync::hub::testing {
namespace {

using hiddify_sync::v1::GetRosterRequest;
using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::RosterSnapshot;
using hsync::testing::BuiltBinary;
using hsync::testing::ChildProcess;
using ::testing::Contains;
using ::testing::HasSubstr;

// One call of each read-only method; `token` "" = no authorization header.
grpc::StatusCode StatusCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                            HubStatus* out = nullptr) {
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!token.empty()) AddBearer(&context, token);
  HubStatus status;
  const grpc::Status rpc = stub->GetStatus(&context, hiddify_sync::v1::GetStatusRequest(), &status);
  if (out != nullptr) *out = status;
  return rpc.error_code();
}

grpc::StatusCode RosterCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!token.empty()) AddBearer(&context, token);
  RosterSnapshot snapshot;
  return stub->GetRoster(&context, GetRosterRequest(), &snapshot).error_code();
}

int PortOf(const HubProcess& hub) {
  const std::string target = hub.target();
  return std::stoi(target.substr(target.rfind(':') + 1));
}

class HubOperatorSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HubSetup setup;
    setup.node_tokens = MakeNodeTokens(2);
    auto hub = HubProcess::Start(setup);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = *std::move(hub);
    auto proxy = hsync::e2e::TcpProxy::Start(PortOf(*hub_));
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    forwarded_ = MakeHubChannel(absl::StrCat("127.0.0.1:", proxy_->port()));
  }
  std::string Token(int node) const { return hub_->setup().node_tokens.at(absl::StrCat("node-", node)); }

  std::unique_ptr<HubProcess> hub_;
  std::unique_ptr<hsync::e2e::TcpProxy> proxy_;
  std::shared_ptr<grpc::Channel> forwarded_;  // 127.0.0.1 -> forwarder -> hub
};

TEST_F(HubOperatorSocketTest, ThroughALoopbackForwarderStatusAndRosterNeedANodeToken) {
  EXPECT_EQ(StatusCall(forwarded_, ""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RosterCall(forwarded_, ""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(StatusCall(forwarded_, Token(0)), grpc::StatusCode::OK);
  EXPECT_EQ(RosterCall(forwarded_, Token(1)), grpc::StatusCode::OK);
  EXPECT_GE(proxy_->forwarded_connections(), 1u);  // really through the forwarder
  // Directly on the hub's TCP port, from 127.0.0.1: the same.
  EXPECT_EQ(StatusCall(hub_->channel(), ""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RosterCall(hub_->channel(), ""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(StatusCall(hub_->channel(), Token(0)), grpc::StatusCode::OK);
  EXPECT_EQ(RosterCall(hub_->channel(), Token(0)), grpc::StatusCode::OK);
  // The operator socket needs no token.
  HubStatus status;
  EXPECT_EQ(StatusCall(hub_->operator_channel(), "", &status), grpc::StatusCode::OK);
  EXPECT_EQ(RosterCall(hub_->operator_channel(), ""), grpc::StatusCode::OK);
  EXPECT_EQ(status.auth_failures(), 4u);  // the four refusals above
}

TEST_F(HubOperatorSocketTest, ReportsAndRosterStreamsNeedATokenOnTheOperatorSocketToo) {
  SimulatedChild intruder("node-0", "not-a-token", hub_->operator_channel());
  hiddify_sync::v1::ReportAck ack;
  EXPECT_EQ(intruder.Send(intruder.Next({{TestUserUuid(1), 5}}), &ack).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto stub = hub_->OperatorStub();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  hiddify_sync::v1::WatchRosterRequest request;
  request.set_node_id("node-0");
  auto reader = stub->WatchRoster(&context, request);
  hiddify_sync::v1::RosterUpdate update;
  while (reader->Read(&update)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // With its token a child may use the socket (the reporter never does).
  SimulatedChild child("node-0", Token(0), hub_->operator_channel());
  EXPECT_TRUE(child.Report({{TestUserUuid(1), 5}}).ok());
}

TEST_F(HubOperatorSocketTest, HealthAndReflectionAnswerOnTheOperatorSocketLikeGrpcurlUnix) {
  absl::StatusOr<int> health = HealthCheck(hub_->operator_channel(), "hiddify_sync.v1.SyncHub");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, probes::HealthCheckResponse::SERVING);
  ReflectionDescriptorDatabase database(hub_->operator_channel());
  ASSERT_TRUE(database.status().ok()) << database.status();
  absl::StatusOr<std::vector<std::string>> services = database.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("hiddify_sync.v1.SyncHub"));
  EXPECT_THAT(*services, Contains("grpc.health.v1.Health"));
}

TEST_F(HubOperatorSocketTest, TenFailedAuthenticationsFromLoopbackBlockIt) {
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(StatusCall(forwarded_, "Bearer-guess"), grpc::StatusCode::UNAUTHENTICATED) << i;
  }
  // Blocked now, even with a valid token, through the forwarder and directly.
  EXPECT_EQ(StatusCall(forwarded_, Token(0)), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(RosterCall(hub_->channel(), Token(0)), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // The operator socket is not.
  HubStatus status;
  ASSERT_EQ(StatusCall(hub_->operator_channel(), "", &status), grpc::StatusCode::OK);
  EXPECT_EQ(status.auth_failures(), 10u);
  EXPECT_EQ(status.auth_blocked_peers(), 1u);
  EXPECT_GE(status.auth_refused_calls(), 2u);
  std::string output;
  EXPECT_NE(RunHubCommand({"status", "--config", hub_->config_path()}, &output), 2) << output;
}

TEST_F(HubOperatorSocketTest, TheSocketIsOwnerOnlyInAnOwnerOnlyDirectoryTheHubCreates) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(1);
  setup.operator_socket = "run/hiddify-sync/hub.sock";  // neither directory exists yet
  auto hub = HubProcess::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  const std::string path = (*hub)->operator_socket();
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (const std::string& dir : {std::filesystem::path(path).parent_path().string(),
                                 std::filesystem::path(path).parent_path().parent_path().string()}) {
    ASSERT_EQ(::stat(dir.c_str(), &st), 0) << dir;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
  }
  EXPECT_EQ(StatusCall((*hub)->operator_channel(), ""), grpc::StatusCode::OK);
  EXPECT_THAT((*hub)->ReadLog(), HasSubstr("operator socket " + path));
  // A clean stop removes the socket.
  absl::StatusOr<int> code = (*hub)->Terminate();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(HubOperatorSocketTest, StatusAsRootUsesTheSocketAndOthersAreToldToRunAsRoot) {
  std::string output;
  ASSERT_EQ(::geteuid(), 0u) << "these tests run as root";
  EXPECT_NE(RunHubCommand({"status", "--config", hub_->config_path()}, &output), 2) << output;
  EXPECT_THAT(output, HasSubstr("node-0: last report"));
  // Over TCP, a token file works and no token does not.
  const std::string token_file = hub_->dir() + "/node-1.token";
  std::ofstream(token_file) << Token(1) << "\n";
  const std::string address = absl::StrCat("127.0.0.1:", proxy_->port());
  EXPECT_NE(RunHubCommand({"status", "--config", hub_->config_path(), "--address", address,
                    "--token-file", token_file},
                   &output),
            2)
      << output;
  EXPECT_THAT(output, HasSubstr("node-0: last report"));
  EXPECT_EQ(RunHubCommand({"status", "--config", hub_->config_path(), "--address", address}, &output), 2);
  EXPECT_THAT(output, HasSubstr("needs a valid node token (--token-file FILE)"));

  // Another user (nobody), with a config it may read, cannot open the
  // root-only socket and is told so.
  if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv not installed";
  const std::string open_dir = hsync::testing::MakeTempDir("hub_opsock_cfg");
  ::chmod(open_dir.c_str(), 0755);
  std::string config = hsync::testing::ReadFileContents(hub_->config_path());
  const std::string key_file = open_dir + "/key";
  std::ofstream(key_file) << hub_->setup().parent_api_key << "\n";
  ::chmod(key_file.c_str(), 0644);
  const size_t key_line = config.find("api_key_file = \"");
  ASSERT_NE(key_line, std::string::npos);
  config.replace(key_line, config.find('\n', key_line) - key_line,
                 absl::StrCat("api_key_file = \"", key_file, "\""));
  std::ofstream(open_dir + "/hub.toml") << config;
  ::chmod((open_dir + "/hub.toml").c_str(), 0644);
  const std::vector<std::string> as_nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                              "--clear-groups", "--"};
  EXPECT_EQ(RunHubCommand({"status", "--config", open_dir + "/hub.toml"}, &output, as_nobody), 2) << output;
  EXPECT_THAT(output, HasSubstr("permission denied on the operator socket"));
  EXPECT_THAT(output, HasSubstr("run as root"));
}

TEST(HubOperatorSocket, AMissingSocketSaysTheHubIsNotRunning) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(1);
  auto hub = HubProcess::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  ASSERT_TRUE((*hub)->Terminate().ok());
  std::string output;
  EXPECT_EQ(RunHubCommand({"status", "--config", (*hub)->config_path()}, &output), 2);
  EXPECT_THAT(output, HasSubstr("does not exist: is the hub running?"));
}

TEST(HubOperatorSocket, AStaleSocketIsReplacedAndALiveOneIsNotTakenOver) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(1);
  auto first = HubProcess::Start(setup);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string path = (*first)->operator_socket();
  // A second hub (its own port) on the same socket path refuses to start.
  HubSetup second_setup = setup;
  second_setup.operator_socket = path;
  auto second = HubProcess::Start(second_setup);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("another hub is serving on it"));
  EXPECT_EQ(StatusCall((*first)->operator_channel(), ""), grpc::StatusCode::OK);
  // SIGKILL leaves the socket file behind; the restarted hub replaces it.
  (*first)->Kill();
  ASSERT_TRUE(std::filesystem::exists(path));
  std::string output;
  EXPECT_EQ(RunHubCommand({"status", "--config", (*first)->config_path(), "--timeout", "2s"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("DOWN"));
  ASSERT_TRUE((*first)->Restart().ok());
  EXPECT_THAT((*first)->ReadLog(), HasSubstr("removed a stale socket"));
  EXPECT_TRUE(hsync::testing::WaitFor(
      [&] { return StatusCall((*first)->operator_channel(), "") == grpc::StatusCode::OK; },
      absl::Seconds(10)));
}

TEST(HubOperatorSocket, ADirectoryThatCannotBeCreatedStopsTheStartWithAClearError) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(1);
  setup.operator_socket = "/proc/hsync-no-such-dir/hub.sock";
  auto hub = HubProcess::Start(setup);
  ASSERT_FALSE(hub.ok());
  EXPECT_THAT(hub.status().message(),
              HasSubstr("operator_socket /proc/hsync-no-such-dir/hub.sock: cannot create directory "
                        "/proc/hsync-no-such-dir"));
}

TEST(HubOperatorSocket, OffMeansNoSocketAndStatusSaysHowToAskOverTcp) {
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(1);
  setup.operator_socket = "";
  auto hub = HubProcess::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  EXPECT_THAT((*hub)->ReadLog(), HasSubstr("operator socket off"));
  std::string output;
  EXPECT_EQ(RunHubCommand({"status", "--config", (*hub)->config_path()}, &output), 2);
  EXPECT_THAT(output, HasSubstr("operator_socket is off"));
  EXPECT_THAT(output, HasSubstr("--address HOST:PORT --token-file FILE"));
}

}  // namespace
}  // namespace hsync::hub::testing
