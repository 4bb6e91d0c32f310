// Logging: line format with and without journald, level filtering, whole lines
// under concurrency. Each case runs in a forked child with stderr redirected
// to a file, because the journald decision is taken once per process.
#include "common/logging.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/child_process.h"

namespace hsync {
namespace {

// Runs `body` in a child whose stderr goes to a file; returns the lines written.
std::vector<std::string> StderrLinesOf(bool journal, const std::function<void()>& body) {
  const std::string dir = testing::MakeTempDir("hsync-logging");
  const std::string path = dir + "/stderr";
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    if (journal) {
      setenv("JOURNAL_STREAM", "8:12345", 1);
    } else {
      unsetenv("JOURNAL_STREAM");
    }
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path.c_str());
  rmdir(dir.c_str());
  std::vector<std::string> lines = absl::StrSplit(text.str(), '\n', absl::SkipEmpty());
  return lines;
}

TEST(LoggingTest, PlainLinesCarryUtcTimestampAndLevel) {
  const auto lines = StderrLinesOf(false, [] {
    LogInfo("hello world");
    LogWarning("careful");
    LogError("broken");
  });
  ASSERT_EQ(lines.size(), 3u);
  const std::regex format(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) .*)");
  for (const std::string& line : lines) EXPECT_TRUE(std::regex_match(line, format)) << line;
  EXPECT_TRUE(lines[0].ends_with(" INFO hello world")) << lines[0];
  EXPECT_TRUE(lines[1].ends_with(" WARNING careful")) << lines[1];
  EXPECT_TRUE(lines[2].ends_with(" ERROR broken")) << lines[2];
}

TEST(LoggingTest, JournalLinesCarrySdDaemonPriorities) {
  const auto lines = StderrLinesOf(true, [] {
    SetLogLevel(LogLevel::kDebug);
    LogDebug("d");
    LogInfo("i");
    LogWarning("w");
    LogError("e");
  });
  EXPECT_EQ(lines, (std::vector<std::string>{"<7>d", "<6>i", "<4>w", "<3>e"}));
}

TEST(LoggingTest, LinesBelowTheLevelAreDropped) {
  const auto lines = StderrLinesOf(true, [] {
    LogDebug("hidden by default");
    LogInfo("shown");
    SetLogLevel(LogLevel::kWarning);
    LogInfo("hidden");
    LogWarning("shown too");
  });
  EXPECT_EQ(lines, (std::vector<std::string>{"<6>shown", "<4>shown too"}));
}

TEST(LoggingTest, EmbeddedNewlinesStayOnOneLine) {
  const auto lines = StderrLinesOf(true, [] { LogInfo("a\nb"); });
  EXPECT_EQ(lines, (std::vector<std::string>{"<6>a b"}));
}

TEST(LoggingTest, ConcurrentLinesAreNeverInterleaved) {
  constexpr int kThreads = 8;
  constexpr int kLines = 500;
  const auto lines = StderrLinesOf(true, [] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t] {
        const std::string payload(200, static_cast<char>('a' + t));
        for (int i = 0; i < kLines; ++i) LogInfo(payload);
      });
    }
    for (auto& th : threads) th.join();
  });
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  for (const std::string& line : lines) {
    ASSERT_EQ(line.size(), 203u);
    EXPECT_EQ(line.substr(3), std::string(200, line[3])) << line;
  }
}

TEST(LoggingTest, ParsesLevelNames) {
  LogLevel level;
  ASSERT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  ASSERT_TRUE(ParseLogLevel("info", &level));
  EXPECT_EQ(level, LogLevel::kInfo);
  ASSERT_TRUE(ParseLogLevel("warning", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  ASSERT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
  EXPECT_FALSE(ParseLogLevel("INFO", &level));
  EXPECT_FALSE(ParseLogLevel("", &level));
}

}  // namespace
}  // namespace hsync
