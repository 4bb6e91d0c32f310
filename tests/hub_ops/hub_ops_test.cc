// The operator subcommands of the real hiddify-sync-hub binary against a
// running hub: `status` (healthy with panelsim as parent, degraded when the
// parent fails, down when the hub is gone) and node enrolment (add-node gives
// a working token after SIGHUP and stores only its hash; remove-node revokes
// it after SIGHUP, ending its roster stream while other nodes' stay open).
#include <signal.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hub/service/node_auth.h"
#include "tests/hub/hub_harness.h"
#include "tests/hub/parent_client_test_panel.h"

namespace hsync::hub::testing {
namespace {

using hsync::testing::BuiltBinary;
using hsync::testing::ChildProcess;
using ::testing::HasSubstr;
using ::testing::Not;

// The token line of add-node's output (indented by two spaces, alone).
std::string TokenFrom(const std::string& output) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (absl::ConsumePrefix(&line, "  ") && line.size() == 43 && line.find(' ') == line.npos) {
      return std::string(line);
    }
  }
  return "";
}

grpc::Status Report(HubProcess& hub, const std::string& node, const std::string& token) {
  SimulatedChild child(node, token, hub.channel());
  hiddify_sync::v1::ReportAck ack;
  return child.Send(child.Next({{TestUserUuid(1, 77), 1000}}), &ack, absl::Seconds(5));
}

class HubStatusCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    panel_ = TestPanel::Start();
    ASSERT_NE(panel_, nullptr);
  }

  std::unique_ptr<HubProcess> StartHub() {
    HubSetup setup;
    setup.parent_url = panel_->runner().base_url();
    setup.parent_api_key = panel_->runner().api_key();
    setup.node_tokens = MakeNodeTokens(2);
    setup.poll_interval = "1s";
    auto hub = HubProcess::Start(setup);
    EXPECT_TRUE(hub.ok()) << hub.status();
    return hub.ok() ? *std::move(hub) : nullptr;
  }

  std::unique_ptr<TestPanel> panel_;
};

TEST_F(HubStatusCommandTest, HealthyDegradedAndDown) {
  const std::string uuid = TestUserUuid(1, 91);
  panel_->CreateUser(uuid, 1000 * kBytesPerGiB, 0);
  std::unique_ptr<HubProcess> hub = StartHub();
  ASSERT_NE(hub, nullptr);
  auto stub = hub->Stub();
  RosterFollower follower(stub.get(), "node-0", hub->setup().node_tokens.at("node-0"));
  ASSERT_TRUE(follower.WaitUntil([](const RosterFollower::State& s) { return s.users >= 1; },
                                 absl::Seconds(20)));
  SimulatedChild child("node-0", hub->setup().node_tokens.at("node-0"), hub->channel());
  ASSERT_TRUE(child.Report({{uuid, 5000}}).ok());
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(20)));

  std::string output;
  EXPECT_EQ(RunHubCommand({"status", "--config", hub->config_path()}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("healthy"));
  EXPECT_THAT(output, HasSubstr("parent panel:     reachable"));
  EXPECT_THAT(output, HasSubstr("node-0: last report"));
  EXPECT_THAT(output, HasSubstr("roster stream open"));
  EXPECT_THAT(output, HasSubstr("node-1: last report never, roster stream CLOSED"));
  EXPECT_THAT(output, HasSubstr("1 watching streams"));

  // The parent answers 500 to everything: the applier fails the user's
  // bytes and the poller fails its reads.
  panel_->AddFault({{"route", "*"}, {"error_rate", 1.0}, {"error_status", 500}});
  ASSERT_TRUE(child.Report({{uuid, 7000}}).ok());
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] {
        auto s = hub->Status();
        return s.ok() && !s->parent_reachable() && s->failing_users_size() > 0;
      },
      absl::Seconds(20)));
  EXPECT_EQ(RunHubCommand({"status", "--config", hub->config_path()}, &output), 1) << output;
  EXPECT_THAT(output, HasSubstr("DEGRADED"));
  EXPECT_THAT(output, HasSubstr("! the parent panel is unreachable"));
  EXPECT_THAT(output, HasSubstr("! 1 user(s) failing to apply to the parent"));
  EXPECT_THAT(output, HasSubstr(uuid));
  EXPECT_THAT(output, HasSubstr("last error:"));
  EXPECT_THAT(output, Not(HasSubstr(panel_->runner().api_key())));
  EXPECT_THAT(output, Not(HasSubstr(panel_->runner().options().proxy_path + "/")));
  panel_->ClearFaults();

  hub->Kill();
  EXPECT_EQ(RunHubCommand({"status", "--config", hub->config_path(), "--timeout", "2s"}, &output), 2)
      << output;
  EXPECT_THAT(output, HasSubstr("DOWN"));
}

TEST(HubStatusCommand, UnreadableConfigIsDownAndBadFlagsAreRefused) {
  std::string output;
  EXPECT_EQ(RunHubCommand({"status", "--config", "/nonexistent/hub.toml"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("cannot read the configuration"));
  EXPECT_EQ(RunHubCommand({"status", "--frobnicate"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("usage: hiddify-sync-hub status"));
}

class HubNodeEnrolmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HubSetup setup;
    setup.node_tokens = MakeNodeTokens(1);
    auto hub = HubProcess::Start(setup);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = *std::move(hub);
    ASSERT_EQ(::chmod(hub_->config_path().c_str(), 0600), 0);
  }

  std::unique_ptr<HubProcess> hub_;
};

TEST_F(HubNodeEnrolmentTest, AddedTokenWorksAfterSighupAndOnlyItsHashIsStored) {
  const std::string before = hsync::testing::ReadFileContents(hub_->config_path());
  std::string output;
  ASSERT_EQ(RunHubCommand({"add-node", "child-new", "--config", hub_->config_path()}, &output), 0) << output;
  const std::string token = TokenFrom(output);
  ASSERT_EQ(token.size(), 43u) << output;
  EXPECT_THAT(output, HasSubstr("systemctl reload hiddify-sync-hub"));

  const std::string after = hsync::testing::ReadFileContents(hub_->config_path());
  EXPECT_THAT(after, Not(HasSubstr(token)));
  EXPECT_EQ(after, absl::StrCat(before, "child-new = \"", TokenHash(token), "\"\n"));
  struct stat st {};
  ASSERT_EQ(::stat(hub_->config_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  EXPECT_EQ(Report(*hub_, "child-new", token).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(hub_->Signal(SIGHUP));
  EXPECT_TRUE(hsync::testing::WaitFor([&] { return Report(*hub_, "child-new", token).ok(); },
                                      absl::Seconds(10)));
  EXPECT_THAT(hub_->ReadLog(), Not(HasSubstr(token)));

  EXPECT_EQ(RunHubCommand({"list-nodes", "--config", hub_->config_path()}, &output), 0);
  EXPECT_EQ(output, "child-new\nnode-0\n");
}

TEST_F(HubNodeEnrolmentTest, RefusesExistingAndInvalidNamesLeavingTheFileAlone) {
  const std::string before = hsync::testing::ReadFileContents(hub_->config_path());
  std::string output;
  EXPECT_EQ(RunHubCommand({"add-node", "node-0", "--config", hub_->config_path()}, &output), 1);
  EXPECT_THAT(output, HasSubstr("already exists"));
  EXPECT_EQ(RunHubCommand({"add-node", "bad.name", "--config", hub_->config_path()}, &output), 1);
  EXPECT_THAT(output, HasSubstr("invalid node name"));
  EXPECT_EQ(RunHubCommand({"add-node", "--config", hub_->config_path()}, &output), 1);
  EXPECT_EQ(RunHubCommand({"remove-node", "nobody", "--config", hub_->config_path()}, &output), 1);
  EXPECT_THAT(output, HasSubstr("no node \"nobody\""));
  EXPECT_EQ(hsync::testing::ReadFileContents(hub_->config_path()), before);
}

TEST_F(HubNodeEnrolmentTest, RemovedNodeIsRefusedAndItsStreamEndsWhileOthersStayOpen) {
  std::string output;
  ASSERT_EQ(RunHubCommand({"add-node", "child-gone", "--config", hub_->config_path()}, &output), 0);
  const std::string token = TokenFrom(output);
  ASSERT_TRUE(hub_->Signal(SIGHUP));
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return Report(*hub_, "child-gone", token).ok(); },
                                      absl::Seconds(10)));
  auto stub = hub_->Stub();
  RosterFollower staying(stub.get(), "node-0", hub_->setup().node_tokens.at("node-0"));
  RosterFollower going(stub.get(), "child-gone", token);
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] {
        auto s = hub_->Status();
        return s.ok() && s->roster_watchers() == 2;
      },
      absl::Seconds(10)));

  ASSERT_EQ(RunHubCommand({"remove-node", "child-gone", "--config", hub_->config_path()}, &output), 0)
      << output;
  EXPECT_THAT(hsync::testing::ReadFileContents(hub_->config_path()), Not(HasSubstr("child-gone")));
  ASSERT_TRUE(hub_->Signal(SIGHUP));
  ASSERT_TRUE(going.WaitUntil([](const RosterFollower::State& s) { return s.done; }, absl::Seconds(10)));
  EXPECT_EQ(going.Snapshot().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Report(*hub_, "child-gone", token).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(staying.Snapshot().done);
  EXPECT_TRUE(Report(*hub_, "node-0", hub_->setup().node_tokens.at("node-0")).ok());
  EXPECT_EQ(RunHubCommand({"list-nodes", "--config", hub_->config_path()}, &output), 0);
  EXPECT_EQ(output, "node-0\n");
}

}  // namespace
}  // namespace hsync::hub::testing
