// TestHttpClient against a real loopback HTTP server (cpp-httplib).
#include "tests/support/http_client.h"

#include <httplib.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
namespace {

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto echo = [](const httplib::Request& req, httplib::Response& res) {
      std::string accept = req.get_header_value("Accept");
      res.set_header("X-Method", req.method);
      res.set_header("X-Accept", accept);
      res.set_content(req.body, "text/plain");
    };
    server_.Get("/echo", echo);
    server_.Post("/echo", echo);
    server_.Patch("/echo", echo);
    server_.Delete("/echo", echo);
    server_.Get("/redirect", [](const httplib::Request&, httplib::Response& res) {
      res.status = 308;
      res.set_header("Location", "/echo");
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      res.set_content("late", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    ASSERT_TRUE(WaitFor([this] { return server_.is_running(); }, absl::Seconds(5)));
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string BaseUrl() const { return absl::StrCat("http://127.0.0.1:", port_); }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(HttpClientTest, SendsMethodHeadersAndBody) {
  TestHttpClient client(BaseUrl());
  for (const std::string method : {"GET", "POST", "PATCH", "DELETE"}) {
    auto r = client.Request(method, "/echo", method == "GET" ? "" : "{\"a\":1}",
                            {"Accept: application/json"});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["x-method"], method);
    EXPECT_EQ(r->headers["x-accept"], "application/json");
    EXPECT_EQ(r->headers["content-type"], "text/plain");
    EXPECT_EQ(r->body, method == "GET" ? "" : "{\"a\":1}");
  }
}

TEST_F(HttpClientTest, DoesNotFollowRedirectsAndReportsStatus) {
  TestHttpClient client(BaseUrl());
  auto r = client.Request("GET", "/redirect");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 308);
  EXPECT_EQ(r->headers["location"], "/echo");
  auto missing = client.Request("GET", "/nothing-here");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(HttpClientTest, TimeoutIsDeadlineExceeded) {
  TestHttpClient client(BaseUrl());
  auto r = client.Request("GET", "/slow", "", {}, absl::Milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  // The same client works for the next request.
  auto ok = client.Request("GET", "/echo");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpClientNoServerTest, RefusedConnectionIsUnavailable) {
  TestHttpClient client(absl::StrCat("http://127.0.0.1:", PickFreePort()));
  auto r = client.Request("GET", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace hsync::testing
