// The hiddify-sync-reporter binary as an operator meets it: bad config and
// arguments exit 2 naming the problem; the daemon collects and sends to a hub,
// serves status, health and reflection on localhost; `status` reports
// healthy / degraded / down; an unreachable MariaDB or a missing panel table
// is a clear error while nothing is lost; SIGTERM stops it cleanly.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/fake_hub.h"
#include "tests/reporter/grpc_raw_probe.h"
#include "tests/reporter/reporter_process.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

hiddify_sync::v1::RosterUpdate RosterOf(const std::vector<std::string>& uuids) {
  hiddify_sync::v1::RosterUpdate full;
  full.set_version(1);
  full.set_full(true);
  for (const auto& uuid : uuids) {
    auto* u = full.add_upserts();
    u->set_uuid(uuid);
    u->set_name("u");
    u->set_usage_limit_bytes(uint64_t{1000} << 30);
    u->set_package_days(90);
    u->set_mode("no_reset");
    u->set_enable(true);
    u->set_is_active(true);
  }
  return full;
}

TEST(ReporterBinaryTest, BadConfigExitsTwoNamingTheKey) {
  ReporterSetup setup;
  setup.hub_address = "127.0.0.1:1";
  setup.panel_db = "hiddifypanel";
  setup.state_db = "hiddify_sync";
  setup.collect_interval = "1s";
  ReporterProcess reporter(setup);
  ASSERT_TRUE(reporter.Start().ok());
  auto code = reporter.process()->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(reporter.Log(), HasSubstr("collect.interval"));
  EXPECT_THAT(reporter.Log(), Not(HasSubstr("node-token")));
}

TEST(ReporterBinaryTest, UnknownArgumentAndMissingConfigExitTwo) {
  auto bad_arg = ChildProcess::Spawn({BuiltBinary("hiddify-sync-reporter"), "--bogus"}, "/dev/null");
  ASSERT_TRUE(bad_arg.ok());
  EXPECT_EQ(bad_arg->Wait(absl::Seconds(10)).value_or(-1), 2);
  const std::string log = MakeTempDir("rbin") + "/out";
  auto missing = ChildProcess::Spawn(
      {BuiltBinary("hiddify-sync-reporter"), "--config", "/nonexistent/reporter.toml"}, log);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->Wait(absl::Seconds(10)).value_or(-1), 2);
  EXPECT_THAT(ReadFileOrEmpty(log), HasSubstr("/nonexistent/reporter.toml"));
}

TEST(ReporterBinaryTest, StatusWithoutADaemonSaysDown) {
  ReporterSetup setup;
  setup.hub_address = "127.0.0.1:1";
  setup.panel_db = "x";
  setup.state_db = "y";
  ReporterProcess reporter(setup);
  auto [code, out] = reporter.StatusCommand();
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out, HasSubstr("DOWN"));
}

TEST(ReporterBinaryTest, DaemonSendsTrafficServesStatusHealthReflectionAndStopsOnSigterm) {
  ChildDb child("bin");
  const std::string a = RandomUuid();
  child.InsertUser(a, 0);
  auto hub = FakeHub::Start("node-token");
  ASSERT_NE(hub, nullptr);
  hub->SetRoster(RosterOf({a}));
  ReporterSetup setup;
  setup.hub_address = hub->address();
  setup.panel_db = child.panel_db();
  setup.state_db = child.state_db();
  ReporterProcess reporter(setup);
  ASSERT_TRUE(reporter.Start().ok());
  // Fresh state: the first collect baselines (usage 0 here); then traffic counts.
  ASSERT_TRUE(WaitFor([&] { return reporter.Log().find("baseline recorded") != std::string::npos; },
                      absl::Seconds(15)))
      << reporter.Log();
  child.AddUsage(a, 7'654'321);
  ASSERT_TRUE(WaitFor([&] { return hub->BytesByUuid()[a] == 7'654'321u; }, absl::Seconds(20)))
      << reporter.Log();

  auto channel = grpc::CreateChannel(reporter.status_address(), grpc::InsecureChannelCredentials());
  auto health = HealthServing(channel);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_TRUE(*health);
  auto services = ReflectionListServices(channel);
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, HasSubstr("hiddify_sync.v1.ReporterStatus"));
  EXPECT_THAT(*services, HasSubstr("grpc.health.v1.Health"));

  auto [code, out] = reporter.StatusCommand();
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("healthy"));
  EXPECT_THAT(out, HasSubstr("node child-1"));
  EXPECT_THAT(out, HasSubstr("roster stream open"));
  EXPECT_THAT(out, HasSubstr("outbox:         0 reports"));

  auto exit_code = reporter.Terminate();
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
  EXPECT_THAT(reporter.Log(), HasSubstr("stopped"));
  EXPECT_THAT(reporter.Log(), Not(HasSubstr("node-token")));
}

TEST(ReporterBinaryTest, NotifiesSystemdReadyWatchdogAndStopping) {
  ChildDb child("bin");
  auto hub = FakeHub::Start("node-token");
  const std::string socket_path = MakeTempDir("notify") + "/notify.sock";
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ReporterSetup setup;
  setup.hub_address = hub->address();
  setup.panel_db = child.panel_db();
  setup.state_db = child.state_db();
  ReporterProcess reporter(setup);
  setenv("NOTIFY_SOCKET", socket_path.c_str(), 1);
  setenv("WATCHDOG_USEC", "600000", 1);
  ASSERT_TRUE(reporter.Start().ok());
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  std::string received;
  auto receive_until = [&](const std::string& what) {
    char buffer[512];
    while (received.find(what) == std::string::npos) {
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      received.append(buffer, static_cast<size_t>(n)).append("\n");
    }
    return true;
  };
  EXPECT_TRUE(receive_until("READY=1")) << received;
  EXPECT_TRUE(receive_until("WATCHDOG=1")) << received;
  ASSERT_EQ(kill(reporter.process()->pid(), SIGTERM), 0);
  EXPECT_TRUE(receive_until("STOPPING=1")) << received;
  EXPECT_EQ(reporter.Terminate().value_or(-1), 0);
  close(fd);
}

TEST(ReporterBinaryTest, UnreachableMariaDbIsDegradedWithAClearError) {
  auto hub = FakeHub::Start("node-token");
  ReporterSetup setup;
  setup.hub_address = hub->address();
  setup.mysql_socket = "/nonexistent/mysqld.sock";
  setup.panel_db = "hiddifypanel";
  setup.state_db = "hiddify_sync";
  ReporterProcess reporter(setup);
  ASSERT_TRUE(reporter.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return reporter.Log().find("/nonexistent/mysqld.sock") != std::string::npos; },
                      absl::Seconds(15)));
  auto [code, out] = reporter.StatusCommand();
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("DEGRADED"));
  EXPECT_THAT(out, HasSubstr("/nonexistent/mysqld.sock"));
  EXPECT_EQ(reporter.Terminate().value_or(-1), 0);
}

TEST(ReporterBinaryTest, MissingPanelTableIsAClearErrorAndNothingIsSent) {
  ChildDb child("bin");
  child.Exec("DROP TABLE " + child.UserTable());
  auto hub = FakeHub::Start("node-token");
  ReporterSetup setup;
  setup.hub_address = hub->address();
  setup.panel_db = child.panel_db();
  setup.state_db = child.state_db();
  ReporterProcess reporter(setup);
  ASSERT_TRUE(reporter.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return reporter.Log().find("doesn't exist") != std::string::npos; },
                      absl::Seconds(15)))
      << reporter.Log();
  EXPECT_THAT(reporter.Log(), HasSubstr(absl::StrCat("`", child.panel_db(), "`.`user`")));
  auto [code, out] = reporter.StatusCommand();
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr(child.panel_db()));
  EXPECT_TRUE(hub->Accepted().empty());
  EXPECT_EQ(reporter.Terminate().value_or(-1), 0);
}

}  // namespace
}  // namespace hsync::testing
