// The reporter's /metrics: the real binary on a panelsim child, with the real
// hub and a panelsim parent, scraped over HTTP with libcurl. The figures must
// match what happened: bytes collected = bytes generated, users created by
// the roster, an outbox that empties, and that grows and ages while the hub
// is gone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/reporter/e2e_system.h"
#include "tests/support/child_process.h"
#include "tests/support/metrics_scrape.h"

namespace hsync::testing {
namespace {

using ::testing::HasSubstr;

TEST(ReporterMetricsTest, FiguresMatchTrafficRosterAndOutbox) {
  E2eOptions options;
  options.parent_users = 12;
  const int port = PickFreePort();
  options.reporter_metrics_listen = absl::StrCat("127.0.0.1:", port);
  auto started = E2eSystem::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<E2eSystem> sys = *std::move(started);
  ASSERT_TRUE(sys->WaitRosterApplied(absl::Seconds(30)).ok()) << sys->reporter().Log();

  ASSERT_TRUE(sys->SetTraffic(true).ok());
  absl::SleepFor(absl::Seconds(3));
  ASSERT_TRUE(sys->SetTraffic(false).ok());
  absl::Status settled = sys->WaitSettled(absl::Now(), absl::Seconds(60));
  ASSERT_TRUE(settled.ok()) << settled;
  auto generated = sys->Generated();
  ASSERT_TRUE(generated.ok());
  double total = 0;
  for (const auto& [uuid, bytes] : *generated) total += static_cast<double>(bytes);
  ASSERT_GT(total, 0);

  absl::StatusOr<Scrape> m = ScrapeMetrics(port);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->Get("hsync_reporter_collected_bytes_total"), total);
  EXPECT_GE(m->Get("hsync_reporter_collected_usages_total"), 1);
  EXPECT_GE(m->Get("hsync_reporter_collect_duration_seconds_count"), 2);
  EXPECT_EQ(m->Get("hsync_reporter_collect_failures_total"), 0);
  EXPECT_EQ(m->Get("hsync_reporter_outbox_reports"), 0);
  EXPECT_EQ(m->Get("hsync_reporter_outbox_bytes"), 0);
  EXPECT_EQ(m->Get("hsync_reporter_outbox_oldest_age_seconds"), 0);
  EXPECT_GT(m->Get("hsync_reporter_last_seq_acked"), 0);
  EXPECT_EQ(m->Get("hsync_reporter_last_seq_acked"), m->Get("hsync_reporter_last_seq_written"));
  EXPECT_EQ(m->Get("hsync_reporter_hub_connected"), 1);
  EXPECT_EQ(m->Get("hsync_reporter_roster_stream_open"), 1);
  EXPECT_EQ(m->Get("hsync_reporter_users_changed_total{kind=\"created\"}"), 12);
  EXPECT_EQ(m->Get("hsync_reporter_users_changed_total{kind=\"removed\"}"), 0);
  EXPECT_EQ(m->Get("hsync_reporter_guard_trips_total"), 0);
  EXPECT_GE(m->Get("hsync_reporter_roster_version_applied"), 1);
  EXPECT_EQ(m->Get(absl::StrCat("hsync_reporter_info{version=\"", sys->ReporterStatus()->version(),
                                "\",node=\"child-1\"}")),
            1);
  EXPECT_THAT(m->body, HasSubstr("# TYPE hsync_reporter_collect_duration_seconds histogram"));
  EXPECT_EQ(m->body.find(options.token), std::string::npos) << "the node token leaked";

  // The hub goes away: reports pile up in the outbox and age.
  sys->hub().Kill();
  ASSERT_TRUE(sys->SetTraffic(true).ok());
  bool grew = false;
  for (int i = 0; i < 100 && !grew; ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    m = ScrapeMetrics(port);
    ASSERT_TRUE(m.ok()) << m.status();
    grew = m->Get("hsync_reporter_outbox_reports") >= 2 &&
           m->Get("hsync_reporter_outbox_oldest_age_seconds") > 0;
  }
  ASSERT_TRUE(sys->SetTraffic(false).ok());
  EXPECT_TRUE(grew) << m->body;
  EXPECT_GT(m->Get("hsync_reporter_outbox_bytes"), 0);
  EXPECT_LT(m->Get("hsync_reporter_last_seq_acked"), m->Get("hsync_reporter_last_seq_written"));
}

}  // namespace
}  // namespace hsync::testing
