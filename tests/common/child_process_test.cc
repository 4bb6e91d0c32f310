// ChildProcess and the small helpers of tests/support/child_process.h.
#include "tests/support/child_process.h"

#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace hsync::testing {
namespace {

TEST(ChildProcessTest, ReportsExitCodeAndWritesTheLog) {
  const std::string dir = MakeTempDir("hsync-child");
  const std::string log = dir + "/out.log";
  auto child = ChildProcess::Spawn({"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}, log);
  ASSERT_TRUE(child.ok()) << child.status();
  auto code = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 7);
  EXPECT_FALSE(child->Running());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "out\nerr\n");
  unlink(log.c_str());
  rmdir(dir.c_str());
}

TEST(ChildProcessTest, SignalStopsAndReportsTheSignal) {
  auto child = ChildProcess::Spawn({"/bin/sleep", "30"});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(child->Running());
  auto timeout = child->Wait(absl::Milliseconds(50));
  ASSERT_FALSE(timeout.ok());
  EXPECT_EQ(timeout.status().code(), absl::StatusCode::kDeadlineExceeded);
  auto code = child->Signal(SIGKILL);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(ChildProcessTest, DestructorKillsARunningChild) {
  int pid = -1;
  {
    auto child = ChildProcess::Spawn({"/bin/sleep", "30"});
    ASSERT_TRUE(child.ok());
    pid = child->pid();
  }
  EXPECT_NE(kill(pid, 0), 0);  // gone and reaped
}

TEST(ChildProcessTest, MissingBinaryIsNotFound) {
  auto child = ChildProcess::Spawn({"/nonexistent/binary"});
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(child.status().message()), ::testing::HasSubstr("/nonexistent/binary"));
}

TEST(ChildProcessTest, ReleasedChildKeepsRunning) {
  auto child = ChildProcess::Spawn({"/bin/sleep", "30"});
  ASSERT_TRUE(child.ok());
  const int pid = child->Release();
  child = absl::InternalError("dropped");  // destroys the ChildProcess
  EXPECT_EQ(kill(pid, 0), 0);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

TEST(ChildProcessHelpersTest, PickFreePortGivesABindablePort) {
  const int port = PickFreePort();
  ASSERT_GT(port, 0);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
}

TEST(ChildProcessHelpersTest, WaitForPollsUntilTrueOrTimeout) {
  const absl::Time start = absl::Now();
  int calls = 0;
  EXPECT_TRUE(WaitFor([&] { return ++calls == 3; }, absl::Seconds(5)));
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(WaitFor([] { return false; }, absl::Milliseconds(100)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

TEST(ChildProcessHelpersTest, BuiltBinaryAndTempDirs) {
  EXPECT_EQ(BuiltBinary("panelsim"), std::string(HSYNC_BIN_DIR) + "/panelsim");
  const std::string a = MakeTempDir("hsync-x");
  const std::string b = MakeTempDir("hsync-x");
  EXPECT_NE(a, b);
  EXPECT_EQ(access(a.c_str(), W_OK), 0);
  rmdir(a.c_str());
  rmdir(b.c_str());
}

}  // namespace
}  // namespace hsync::testing
