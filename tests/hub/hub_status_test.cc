// BuildHubStatus: every part of the hub lands in its HubStatus field.
#include "hub/service/hub_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "common/proto_time.h"
#include "hub/service/hub_metrics.h"
#include "hub/ops/status_summary.h"

namespace hsync::hub {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'750'000'000);

HubStatusInputs Inputs() {
  HubStatusInputs in;
  in.version = "0.1.0";
  in.started_at = kT0;
  in.journal.pending_users = 3;
  in.journal.pending_bytes = 3000;
  in.journal.reports = 42;
  in.journal.oldest_pending_at = kT0 + absl::Seconds(5);
  in.journal.orphaned_bytes = 77;
  in.journal.orphaned_users = 1;
  in.journal.bytes_applied_total = 123456;
  in.journal.audit_bytes = 4200;
  in.journal.audit_max_bytes = 8000;
  in.journal.rollback_refusals = 2;
  // node "a": two streams, the second is the newer one.
  in.streams.push_back({.node_id = "a", .stream_id = 11, .last_seq = 9, .reports = 9,
                        .duplicates = 1, .bytes = 900, .last_report_at = kT0 + absl::Seconds(1)});
  in.streams.push_back({.node_id = "a", .stream_id = 12, .last_seq = 4, .reports = 4,
                        .duplicates = 2, .bytes = 400, .last_report_at = kT0 + absl::Seconds(20)});
  in.streams.push_back({.node_id = "b", .stream_id = 13, .last_seq = 1, .reports = 1,
                        .duplicates = 0, .bytes = 10, .last_report_at = kT0 + absl::Seconds(3)});
  in.applier.last_apply_at = kT0 + absl::Seconds(30);
  in.applier.patches_total = 17;
  in.applier.parent_reachable = true;
  in.applier.failing_users.push_back({"u1", 500, 3, "UNAVAILABLE: 500", kT0 + absl::Seconds(60)});
  in.roster_version = 8;
  in.roster_size = 250;
  in.roster_fetched_at = kT0 + absl::Seconds(25);
  in.roster_watchers = 2;
  in.configured_nodes = {"a", "b", "c"};
  in.live["a"] = {.rejected = 1, .open_roster_streams = 1, .roster_version_sent = 8};
  in.live["x"] = {.rejected = 5, .open_roster_streams = 0, .roster_version_sent = 0};
  return in;
}

TEST(HubStatusTest, FillsEveryField) {
  hiddify_sync::v1::HubStatus status = BuildHubStatus(Inputs());
  EXPECT_EQ(status.version(), "0.1.0");
  EXPECT_EQ(FromProtoTimestamp(status.started_at()), kT0);
  EXPECT_EQ(status.pending_users(), 3u);
  EXPECT_EQ(status.pending_bytes(), 3000u);
  EXPECT_EQ(status.journal_reports(), 42u);
  EXPECT_EQ(FromProtoTimestamp(status.oldest_pending_at()), kT0 + absl::Seconds(5));
  EXPECT_EQ(FromProtoTimestamp(status.last_apply_at()), kT0 + absl::Seconds(30));
  EXPECT_EQ(status.bytes_applied_total(), 123456u);
  EXPECT_EQ(status.patches_total(), 17u);
  ASSERT_EQ(status.failing_users_size(), 1);
  EXPECT_EQ(status.failing_users(0).uuid(), "u1");
  EXPECT_EQ(status.failing_users(0).pending_bytes(), 500u);
  EXPECT_EQ(status.failing_users(0).consecutive_failures(), 3u);
  EXPECT_EQ(status.failing_users(0).last_error(), "UNAVAILABLE: 500");
  EXPECT_EQ(FromProtoTimestamp(status.failing_users(0).next_attempt_at()), kT0 + absl::Seconds(60));
  EXPECT_TRUE(status.parent_reachable());
  EXPECT_EQ(status.roster_version(), 8u);
  EXPECT_EQ(status.roster_size(), 250u);
  EXPECT_EQ(FromProtoTimestamp(status.roster_fetched_at()), kT0 + absl::Seconds(25));
  EXPECT_EQ(status.roster_watchers(), 2u);
  EXPECT_EQ(status.orphaned_bytes(), 77u);
  EXPECT_EQ(status.orphaned_users(), 1u);
  EXPECT_EQ(status.audit_reports(), 42u);
  EXPECT_EQ(status.audit_bytes(), 4200u);
  EXPECT_EQ(status.audit_max_bytes(), 8000u);
  EXPECT_EQ(status.rollback_refusals(), 2u);
}

TEST(HubStatusTest, OneNodeEntryPerConfiguredJournaledOrLiveNode) {
  hiddify_sync::v1::HubStatus status = BuildHubStatus(Inputs());
  ASSERT_EQ(status.nodes_size(), 4);  // a, b, c (configured, silent), x (refused, not configured)
  const auto& a = status.nodes(0);
  EXPECT_EQ(a.node_id(), "a");
  EXPECT_EQ(a.stream_id(), 12u);  // the most recent stream
  EXPECT_EQ(a.last_seq(), 4u);
  EXPECT_EQ(FromProtoTimestamp(a.last_report_at()), kT0 + absl::Seconds(20));
  EXPECT_EQ(a.reports_accepted(), 13u);  // summed over streams
  EXPECT_EQ(a.bytes_accepted(), 1300u);
  EXPECT_EQ(a.duplicates(), 3u);  // journaled, summed over streams
  EXPECT_TRUE(a.roster_stream_open());
  EXPECT_EQ(a.roster_version_sent(), 8u);
  EXPECT_EQ(status.nodes(1).node_id(), "b");
  EXPECT_FALSE(status.nodes(1).roster_stream_open());
  const auto& c = status.nodes(2);
  EXPECT_EQ(c.node_id(), "c");
  EXPECT_FALSE(c.has_last_report_at());
  EXPECT_EQ(c.reports_accepted(), 0u);
  EXPECT_EQ(status.nodes(3).node_id(), "x");
}

TEST(HubStatusTest, ParentStateComesFromTheMostRecentContact) {
  HubStatusInputs in = Inputs();
  // The poller failed after the applier's last success.
  in.applier.last_parent_error = "";
  in.poller.last_attempt_at = kT0 + absl::Seconds(40);
  in.poller.last_ok = false;
  in.poller.last_error = "list users: UNAVAILABLE: parent answered 502";
  in.poller.last_error_at = kT0 + absl::Seconds(40);
  hiddify_sync::v1::HubStatus status = BuildHubStatus(in);
  EXPECT_FALSE(status.parent_reachable());
  EXPECT_EQ(status.last_parent_error(), "list users: UNAVAILABLE: parent answered 502");
  EXPECT_EQ(FromProtoTimestamp(status.last_parent_error_at()), kT0 + absl::Seconds(40));

  // Then the applier failed, later still.
  in.applier.parent_reachable = false;
  in.applier.last_parent_error = "PATCH: DEADLINE_EXCEEDED";
  in.applier.last_parent_error_at = kT0 + absl::Seconds(50);
  status = BuildHubStatus(in);
  EXPECT_EQ(status.last_parent_error(), "PATCH: DEADLINE_EXCEEDED");
  EXPECT_FALSE(status.parent_reachable());

  // A later successful poll makes the parent reachable again; the error stays visible.
  in.poller.last_attempt_at = kT0 + absl::Seconds(60);
  in.poller.last_success_at = kT0 + absl::Seconds(60);
  in.poller.last_ok = true;
  status = BuildHubStatus(in);
  EXPECT_TRUE(status.parent_reachable());
  EXPECT_EQ(status.last_parent_error(), "PATCH: DEADLINE_EXCEEDED");
}

TEST(HubStatusTest, NeverHappenedTimesStayUnset) {
  HubStatusInputs in;
  hiddify_sync::v1::HubStatus status = BuildHubStatus(in);
  EXPECT_FALSE(status.has_last_apply_at());
  EXPECT_FALSE(status.has_roster_fetched_at());
  EXPECT_FALSE(status.has_oldest_pending_at());
  EXPECT_FALSE(status.has_last_parent_error_at());
  EXPECT_EQ(status.nodes_size(), 0);
}

TEST(HubStatusTest, SkippedRosterUsersAreListedJudgedPrintedAndCounted) {
  HubStatusInputs in = Inputs();
  in.poller.skipped_users.push_back(
      {"u-neg", "current_usage_GB",
       "element 3: field 'current_usage_GB' of user u-neg: GiB value must not be negative, got -0.5"});
  in.poller.skipped_users.push_back({"", "", "element 9: expected a JSON object, got number"});
  hiddify_sync::v1::HubStatus status = BuildHubStatus(in);
  ASSERT_EQ(status.roster_skipped_users_size(), 2);
  EXPECT_EQ(status.roster_skipped_users(0).uuid(), "u-neg");
  EXPECT_THAT(status.roster_skipped_users(0).reason(), ::testing::HasSubstr("negative"));
  EXPECT_EQ(status.roster_skipped_users(1).uuid(), "");

  const absl::Time now = kT0 + absl::Seconds(40);
  HubVerdict verdict = JudgeHubStatus(status, now, HubStatusThresholds{});
  EXPECT_EQ(verdict.health, HubHealth::kDegraded);
  EXPECT_THAT(verdict.reasons,
              ::testing::Contains(::testing::HasSubstr("2 parent user(s) unreadable")));
  std::ostringstream out;
  PrintHubStatus(status, verdict, now, out);
  EXPECT_THAT(out.str(), ::testing::HasSubstr("skipped users:  2"));
  EXPECT_THAT(out.str(), ::testing::HasSubstr("u-neg: element 3: field 'current_usage_GB'"));
  EXPECT_THAT(out.str(), ::testing::HasSubstr("(no uuid): element 9"));

  bool found = false;
  for (const auto& family : HubStatusMetrics(status, now)) {
    if (family.name != "hsync_hub_roster_skipped_users") continue;
    found = true;
    ASSERT_EQ(family.metric.size(), 1u);
    EXPECT_EQ(family.metric[0].gauge.value, 2);
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(BuildHubStatus(Inputs()).roster_skipped_users_size(), 0);
}

}  // namespace
}  // namespace hsync::hub
