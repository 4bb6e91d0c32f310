// ApplyTrigger: debounced runs (one per burst of requests), retried failures
// shown in status, command mode with exit codes and a timeout; HTTP mode
// against a real listening server.
#include "reporter/panel/apply_trigger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/child_process.h"

namespace hsync::reporter {
namespace {

using hsync::testing::WaitFor;
using ::testing::HasSubstr;

// A loopback HTTP server counting POST /apply; the first `fail_first` answer 500.
class ApplyEndpoint {
 public:
  explicit ApplyEndpoint(int fail_first = 0) : fail_first_(fail_first) {
    server_.Post("/apply", [this](const httplib::Request& req, httplib::Response& res) {
      last_key_ = req.get_header_value("Hiddify-API-Key");
      if (calls_++ < fail_first_) {
        res.status = 500;
        res.set_content("{\"msg\":\"boom\"}", "application/json");
        return;
      }
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~ApplyEndpoint() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/apply"); }
  int calls() const { return calls_; }
  std::string last_key() const { return last_key_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  int fail_first_;
  std::atomic<int> calls_{0};
  std::string last_key_;
  std::thread thread_;
};

ApplyTriggerOptions UrlOptions(const std::string& url) {
  ApplyTriggerOptions o;
  o.url = url;
  o.debounce = absl::Milliseconds(200);
  o.timeout = absl::Seconds(5);
  o.retry_initial = absl::Milliseconds(100);
  o.retry_max = absl::Milliseconds(300);
  return o;
}

TEST(ApplyTriggerTest, ABurstOfRequestsRunsOnceAfterTheDebounce) {
  ApplyEndpoint endpoint;
  StatusBoard board;
  ApplyTriggerOptions options = UrlOptions(endpoint.url());
  options.api_key = "local-admin-key";
  options.debounce = absl::Seconds(1);
  ApplyTrigger trigger(options, &board);
  trigger.Start();
  for (int i = 0; i < 5; ++i) trigger.Request();
  EXPECT_TRUE(board.Snapshot().apply_pending());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(endpoint.calls(), 0);  // still inside the debounce window
  ASSERT_TRUE(WaitFor([&] { return endpoint.calls() == 1; }, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return !board.Snapshot().apply_pending(); }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_EQ(endpoint.calls(), 1);
  EXPECT_EQ(endpoint.last_key(), "local-admin-key");
  EXPECT_EQ(board.Snapshot().apply_runs(), 1u);
  trigger.Request();
  ASSERT_TRUE(WaitFor([&] { return endpoint.calls() == 2; }, absl::Seconds(5)));
}

TEST(ApplyTriggerTest, FailuresAreRetriedAndShownInStatus) {
  ApplyEndpoint endpoint(/*fail_first=*/2);
  StatusBoard board;
  ApplyTrigger trigger(UrlOptions(endpoint.url()), &board);
  trigger.Start();
  trigger.Request();
  ASSERT_TRUE(WaitFor([&] { return endpoint.calls() == 3; }, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return !board.Snapshot().apply_pending(); }, absl::Seconds(5)));
  auto status = board.Snapshot();
  EXPECT_EQ(status.apply_failures(), 2u);
  EXPECT_EQ(status.apply_runs(), 3u);
  EXPECT_THAT(status.last_error(), HasSubstr("HTTP 500"));
  // The URL path may hold a secret admin path: it never shows.
  EXPECT_THAT(status.last_error(), ::testing::Not(HasSubstr("/apply")));
}

TEST(ApplyTriggerTest, UnreachableUrlIsRetried) {
  StatusBoard board;
  const int port = hsync::testing::PickFreePort();
  ApplyTrigger trigger(UrlOptions(absl::StrCat("http://127.0.0.1:", port, "/apply")), &board);
  EXPECT_EQ(trigger.RunOnce().code(), absl::StatusCode::kUnavailable);
}

TEST(ApplyTriggerTest, CommandRunsOnceAndReportsExitStatusAndTimeout) {
  const std::string dir = hsync::testing::MakeTempDir("apply");
  StatusBoard board;
  ApplyTriggerOptions options;
  options.command = absl::StrCat("echo run >> ", dir, "/runs");
  options.debounce = absl::Milliseconds(50);
  ApplyTrigger trigger(options, &board);
  trigger.Start();
  trigger.Request();
  trigger.Request();
  auto runs = [&] {
    std::ifstream in(dir + "/runs");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string content = ss.str();
    return std::count(content.begin(), content.end(), '\n');
  };
  ASSERT_TRUE(WaitFor([&] { return runs() == 1; }, absl::Seconds(5)));
  trigger.Stop();
  EXPECT_EQ(runs(), 1);

  options.command = "exit 3";
  ApplyTrigger failing(options, &board);
  absl::Status s = failing.RunOnce();
  EXPECT_THAT(std::string(s.message()), HasSubstr("exited with status 3"));

  options.command = "sleep 30";
  options.timeout = absl::Milliseconds(300);
  ApplyTrigger slow(options, &board);
  const absl::Time start = absl::Now();
  s = slow.RunOnce();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(ApplyTriggerTest, DisabledTriggerDoesNothing) {
  StatusBoard board;
  ApplyTriggerOptions options;
  ApplyTrigger trigger(options, &board);
  EXPECT_FALSE(trigger.enabled());
  trigger.Start();
  trigger.Request();
  EXPECT_FALSE(board.Snapshot().apply_pending());
}

}  // namespace
}  // namespace hsync::reporter
