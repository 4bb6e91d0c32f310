// MetricsEndpoint: a real HTTP listener scraped with libcurl; live registry
// metrics and snapshot metrics in one answer, in Prometheus text format; a
// taken address is a clear Unavailable, not a crash.
#include "common/metrics_endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/metric_families.h"
#include "prometheus/counter.h"
#include "tests/support/http_client.h"

namespace hsync {
namespace {

using ::testing::HasSubstr;

TEST(MetricsEndpointTest, ServesRegistryAndSnapshotInTextFormat) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::Counter& requests =
      prometheus::BuildCounter().Name("test_requests_total").Help("requests").Register(*registry).Add(
          {{"kind", "patch"}});
  std::atomic<int> snapshots{0};
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", registry, [&snapshots] {
    ++snapshots;
    prometheus::MetricFamily per_node = CounterFamily("test_node_bytes_total", "bytes per node");
    AddSample(per_node, 12345678901.0, {{"node", "de-1"}});
    return std::vector<prometheus::MetricFamily>{
        Gauge("test_pending_users", "pending", 7), std::move(per_node)};
  });
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  ASSERT_GT((*endpoint)->port(), 0);
  requests.Increment(3);

  testing::TestHttpClient http(absl::StrCat("http://127.0.0.1:", (*endpoint)->port()));
  auto answer = http.Request("GET", "/metrics");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->status, 200);
  EXPECT_THAT(answer->headers["content-type"], HasSubstr("text/plain"));
  EXPECT_THAT(answer->body, HasSubstr("# TYPE test_requests_total counter"));
  EXPECT_THAT(answer->body, HasSubstr("test_requests_total{kind=\"patch\"} 3"));
  EXPECT_THAT(answer->body, HasSubstr("# TYPE test_pending_users gauge"));
  EXPECT_THAT(answer->body, HasSubstr("test_pending_users 7"));
  EXPECT_THAT(answer->body, HasSubstr("test_node_bytes_total{node=\"de-1\"} 12345678901"));
  EXPECT_EQ(snapshots.load(), 1);

  // Every scrape reads the live values again.
  requests.Increment();
  answer = http.Request("GET", "/metrics");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_THAT(answer->body, HasSubstr("test_requests_total{kind=\"patch\"} 4"));
  EXPECT_EQ(snapshots.load(), 2);
}

TEST(MetricsEndpointTest, OtherPathsAreNotFound) {
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", nullptr, {});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  testing::TestHttpClient http(absl::StrCat("http://127.0.0.1:", (*endpoint)->port()));
  auto answer = http.Request("GET", "/status");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->status, 404);
}

TEST(MetricsEndpointTest, TakenAddressIsUnavailableNamingIt) {
  auto first = MetricsEndpoint::Start("127.0.0.1:0", nullptr, {});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string taken = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = MetricsEndpoint::Start(taken, nullptr, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(taken));
}

TEST(MetricsEndpointTest, MalformedAddressIsUnavailable) {
  auto endpoint = MetricsEndpoint::Start("not an address", nullptr, {});
  EXPECT_FALSE(endpoint.ok());
}

}  // namespace
}  // namespace hsync
