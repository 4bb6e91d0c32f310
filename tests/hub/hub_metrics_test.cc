// The hub's /metrics: the real binary scraped over HTTP with libcurl while
// simulated children report and panelsim is the parent. Every figure must
// match what happened (bytes per node, duplicates, PATCHes, parent requests
// by kind and status, auth failures), secrets never appear, and a metrics
// address that is taken does not stop the hub.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/metrics_endpoint.h"
#include "common/units.h"
#include "hub/service/hub_metrics.h"
#include "tests/hub/hub_harness.h"
#include "tests/hub/parent_client_test_panel.h"
#include "tests/support/child_process.h"
#include "tests/support/metrics_scrape.h"

namespace hsync::hub::testing {
namespace {

using hsync::testing::PickFreePort;
using hsync::testing::Scrape;
using hsync::testing::ScrapeMetrics;
using ::testing::HasSubstr;

std::unique_ptr<HubProcess> StartHub(HubSetup setup) {
  setup.metrics_listen = absl::StrCat("127.0.0.1:", PickFreePort());
  auto hub = HubProcess::Start(std::move(setup));
  EXPECT_TRUE(hub.ok()) << hub.status();
  return hub.ok() ? *std::move(hub) : nullptr;
}

int MetricsPort(HubProcess& hub) {
  const std::string& listen = hub.setup().metrics_listen;
  return std::stoi(listen.substr(listen.rfind(':') + 1));
}

TEST(HubMetricsTest, FiguresMatchWhatHappened) {
  std::unique_ptr<TestPanel> panel = TestPanel::Start();
  ASSERT_NE(panel, nullptr);
  const std::string a = TestUserUuid(1, 0x3e), b = TestUserUuid(2, 0x3e);
  panel->CreateUser(a, 100 * kBytesPerGiB, 0);
  panel->CreateUser(b, 100 * kBytesPerGiB, 0);
  HubSetup setup;
  setup.parent_url = panel->runner().base_url();
  setup.parent_api_key = panel->runner().api_key();
  setup.node_tokens = MakeNodeTokens(2);
  setup.poll_interval = "1s";
  std::unique_ptr<HubProcess> hub = StartHub(setup);
  ASSERT_NE(hub, nullptr);

  SimulatedChild child0("node-0", setup.node_tokens.at("node-0"), hub->channel());
  SimulatedChild child1("node-1", setup.node_tokens.at("node-1"), hub->channel());
  const hiddify_sync::v1::UsageReport first = child0.Next({{a, 5'000'000'123}, {b, 17}});
  ASSERT_TRUE(child0.SendUntilAcked(first).ok());
  ASSERT_TRUE(child0.SendUntilAcked(first).ok());  // a resend: a duplicate, not counted
  ASSERT_TRUE(child1.Report({{a, 1'000'000}}).ok());
  // One wrong token.
  SimulatedChild intruder("node-1", "not-the-token", hub->channel());
  hiddify_sync::v1::ReportAck ack;
  EXPECT_EQ(intruder.Send(intruder.Next({{a, 1}}), &ack).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(30)));

  absl::StatusOr<Scrape> m = ScrapeMetrics(MetricsPort(*hub));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->Get("hsync_hub_node_bytes_total{node=\"node-0\"}"), 5'000'000'140.0);
  EXPECT_EQ(m->Get("hsync_hub_node_bytes_total{node=\"node-1\"}"), 1'000'000.0);
  EXPECT_EQ(m->Get("hsync_hub_node_reports_total{node=\"node-0\"}"), 1);
  EXPECT_EQ(m->Get("hsync_hub_node_duplicate_reports_total{node=\"node-0\"}"), 1);
  EXPECT_EQ(m->Get("hsync_hub_node_duplicate_reports_total{node=\"node-1\"}"), 0);
  EXPECT_EQ(m->Get("hsync_hub_applied_bytes_total"), 5'001'000'140.0);
  EXPECT_EQ(m->Get("hsync_hub_journal_pending_bytes"), 0);
  EXPECT_EQ(m->Get("hsync_hub_journal_pending_users"), 0);
  EXPECT_EQ(m->Get("hsync_hub_orphaned_bytes_total"), 0);
  EXPECT_EQ(m->Get("hsync_hub_auth_failures_total"), 1);
  EXPECT_EQ(m->Get("hsync_hub_auth_blocked_peers"), 0);  // one failure blocks nobody
  EXPECT_EQ(m->Get("hsync_hub_parent_reachable"), 1);
  EXPECT_EQ(m->Get("hsync_hub_roster_users"), 2);
  EXPECT_GE(m->Get("hsync_hub_roster_version"), 1);
  EXPECT_EQ(m->Get("hsync_hub_status_ok"), 1);
  // Every successful PATCH shows as a PATCH the parent answered 200.
  const double patches = m->Get("hsync_hub_patches_total");
  EXPECT_GE(patches, 2);
  EXPECT_EQ(m->Get("hsync_hub_parent_requests_total{code=\"200\",kind=\"patch\"}"), patches);
  EXPECT_GE(m->Get("hsync_hub_parent_requests_total{code=\"200\",kind=\"get\"}"), patches);
  EXPECT_GE(m->Get("hsync_hub_parent_requests_total{code=\"200\",kind=\"list\"}"), 1);
  EXPECT_EQ(m->Get("hsync_hub_apply_user_duration_seconds_count{result=\"applied\"}"), patches);
  EXPECT_EQ(m->Get("hsync_hub_parent_request_duration_seconds_count{kind=\"patch\"}"), patches);
  EXPECT_GT(m->Get("hsync_hub_parent_request_duration_seconds_sum{kind=\"patch\"}"), 0);
  EXPECT_THAT(m->body, HasSubstr("# TYPE hsync_hub_node_bytes_total counter"));
  EXPECT_THAT(m->body, HasSubstr("# TYPE hsync_hub_journal_pending_bytes gauge"));
  EXPECT_THAT(m->body, HasSubstr("# TYPE hsync_hub_apply_user_duration_seconds histogram"));
  // No secret, and not the admin path of the parent's URL.
  EXPECT_EQ(m->body.find(setup.parent_api_key), std::string::npos);
  for (const auto& [node, token] : setup.node_tokens) {
    EXPECT_EQ(m->body.find(token), std::string::npos) << node;
  }
  EXPECT_EQ(m->body.find(panel->runner().base_url()), std::string::npos);

  // The same auth failure shows in GetStatus (and so in `status`).
  absl::StatusOr<hiddify_sync::v1::HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->auth_failures(), 1u);
  EXPECT_EQ(status->apply_errors(), 0u);
  EXPECT_THAT(hub->ReadLog(), HasSubstr("metrics: serving Prometheus metrics on " +
                                        hub->setup().metrics_listen));
}

TEST(HubMetricsTest, ParentDownShowsAsFailedRequestsAndApplyErrors) {
  HubSetup setup;  // parent_url: nothing listens there
  setup.node_tokens = MakeNodeTokens(1);
  std::unique_ptr<HubProcess> hub = StartHub(setup);
  ASSERT_NE(hub, nullptr);
  SimulatedChild child("node-0", setup.node_tokens.at("node-0"), hub->channel());
  ASSERT_TRUE(child.Report({{TestUserUuid(1, 0x3f), 4096}}).ok());

  absl::StatusOr<Scrape> m;
  for (int i = 0; i < 100; ++i) {
    m = ScrapeMetrics(MetricsPort(*hub));
    ASSERT_TRUE(m.ok()) << m.status();
    if (m->Get("hsync_hub_apply_errors_total") >= 1) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GE(m->Get("hsync_hub_apply_errors_total"), 1);
  EXPECT_EQ(m->Get("hsync_hub_parent_reachable"), 0);
  EXPECT_GE(m->Get("hsync_hub_parent_requests_total{code=\"none\",kind=\"get\"}"), 1);
  EXPECT_GE(m->Get("hsync_hub_apply_user_duration_seconds_count{result=\"failed\"}"), 1);
  // The bytes wait in the journal, visible as its depth.
  EXPECT_EQ(m->Get("hsync_hub_journal_pending_bytes"), 4096);
  EXPECT_EQ(m->Get("hsync_hub_journal_pending_users"), 1);
  EXPECT_EQ(m->Get("hsync_hub_patches_total"), 0);
}

TEST(HubMetricsTest, ATakenMetricsAddressIsLoggedAndTheHubServesAnyway) {
  auto squatter = MetricsEndpoint::Start("127.0.0.1:0", nullptr, {});
  ASSERT_TRUE(squatter.ok()) << squatter.status();
  HubSetup setup;
  setup.node_tokens = MakeNodeTokens(1);
  setup.metrics_listen = absl::StrCat("127.0.0.1:", (*squatter)->port());
  auto hub = HubProcess::Start(setup);  // waits for SERVING
  ASSERT_TRUE(hub.ok()) << hub.status();
  SimulatedChild child("node-0", setup.node_tokens.at("node-0"), (*hub)->channel());
  EXPECT_TRUE(child.Report({{TestUserUuid(1, 0x40), 1}}).ok());
  EXPECT_THAT((*hub)->ReadLog(), HasSubstr(absl::StrCat("metrics: cannot listen on ",
                                                        setup.metrics_listen)));
  EXPECT_THAT((*hub)->ReadLog(), HasSubstr("/metrics is OFF"));
}

// The scrape-time families, from a status with every field set.
TEST(HubStatusMetricsTest, EveryStatusFigureBecomesASample) {
  hiddify_sync::v1::HubStatus s;
  s.set_version("9.9.9");
  s.set_pending_users(3);
  s.set_pending_bytes(3000);
  s.mutable_oldest_pending_at()->set_seconds(1'800'000'000);
  s.set_auth_failures(12);
  s.set_auth_refused_calls(4);
  s.set_auth_blocked_peers(1);
  s.set_apply_errors(6);
  s.set_orphaned_bytes(77);
  s.set_roster_watchers(5);
  s.set_audit_bytes(4200);
  s.set_audit_max_bytes(8000);
  s.set_rollback_refusals(2);
  auto* node = s.add_nodes();
  node->set_node_id("de-1");
  node->set_bytes_accepted(99);
  node->set_roster_stream_open(true);
  std::map<std::string, double> seen;
  for (const prometheus::MetricFamily& family :
       HubStatusMetrics(s, absl::FromUnixSeconds(1'800'000'030))) {
    for (const prometheus::ClientMetric& metric : family.metric) {
      std::string key = family.name;
      for (const auto& label : metric.label) absl::StrAppend(&key, "/", label.name, "=", label.value);
      seen[key] = family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                                 : metric.gauge.value;
    }
  }
  EXPECT_EQ(seen["hsync_hub_info/version=9.9.9"], 1);
  EXPECT_EQ(seen["hsync_hub_journal_pending_bytes"], 3000);
  EXPECT_EQ(seen["hsync_hub_journal_oldest_pending_age_seconds"], 30);
  EXPECT_EQ(seen["hsync_hub_auth_failures_total"], 12);
  EXPECT_EQ(seen["hsync_hub_auth_refused_calls_total"], 4);
  EXPECT_EQ(seen["hsync_hub_auth_blocked_peers"], 1);
  EXPECT_EQ(seen["hsync_hub_apply_errors_total"], 6);
  EXPECT_EQ(seen["hsync_hub_orphaned_bytes_total"], 77);
  EXPECT_EQ(seen["hsync_hub_roster_watchers"], 5);
  EXPECT_EQ(seen["hsync_hub_journal_audit_bytes"], 4200);
  EXPECT_EQ(seen["hsync_hub_journal_audit_max_bytes"], 8000);
  EXPECT_EQ(seen["hsync_hub_rollback_refusals_total"], 2);
  EXPECT_EQ(seen["hsync_hub_node_bytes_total/node=de-1"], 99);
  EXPECT_EQ(seen["hsync_hub_node_roster_stream_open/node=de-1"], 1);
}

}  // namespace
}  // namespace hsync::hub::testing
