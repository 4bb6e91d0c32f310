// How `hiddify-sync-reporter status` judges a status reply, and what it prints.
#include "reporter/ops/status_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace hsync::reporter {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class JudgeStatusTest : public ::testing::Test {
 protected:
  JudgeStatusTest() : now_(absl::FromUnixSeconds(1'800'000'000)) {
    reply_.set_version("0.1.0");
    reply_.set_node_id("child-1");
    *reply_.mutable_started_at() = ToProtoTimestamp(now_ - absl::Hours(1));
    reply_.set_hub_address("hub:7443");
    reply_.set_hub_connected(true);
    reply_.set_roster_stream_open(true);
    *reply_.mutable_last_collect_at() = ToProtoTimestamp(now_ - absl::Seconds(10));
  }
  HealthVerdict Judge() { return JudgeStatus(reply_, now_, absl::Seconds(30)); }

  absl::Time now_;
  hiddify_sync::v1::ReporterStatusReply reply_;
};

TEST_F(JudgeStatusTest, HealthyWhenEverythingFlows) {
  HealthVerdict v = Judge();
  EXPECT_EQ(v.health, ReporterHealth::kHealthy);
  EXPECT_THAT(v.reasons, IsEmpty());
}

TEST_F(JudgeStatusTest, EachProblemDegradesWithAReason) {
  auto degraded_by = [&](auto change, const std::string& reason) {
    hiddify_sync::v1::ReporterStatusReply saved = reply_;
    change(reply_);
    HealthVerdict v = Judge();
    EXPECT_EQ(v.health, ReporterHealth::kDegraded) << reason;
    ASSERT_FALSE(v.reasons.empty());
    EXPECT_THAT(v.reasons[0], HasSubstr(reason));
    reply_ = saved;
  };
  degraded_by([](auto& r) { r.set_hub_connected(false); }, "hub");
  degraded_by([](auto& r) { r.set_roster_stream_open(false); }, "roster stream");
  degraded_by([&](auto& r) { *r.mutable_last_collect_at() = ToProtoTimestamp(now_ - absl::Minutes(10)); },
              "collect");
  degraded_by([](auto& r) { r.clear_last_collect_at(); }, "no collect");
  degraded_by([&](auto& r) {
    r.set_outbox_reports(4);
    *r.mutable_outbox_oldest_at() = ToProtoTimestamp(now_ - absl::Minutes(5));
  }, "outbox");
  degraded_by([](auto& r) {
    r.set_apply_pending(true);
    r.set_apply_failures(2);
  }, "apply");
  degraded_by([](auto& r) { r.set_held_removals(3); }, "approve-removals");
  degraded_by([](auto& r) { r.add_skipped_users()->set_uuid("u"); }, "skipped");
  degraded_by([&](auto& r) {
    r.set_last_error("boom");
    *r.mutable_last_error_at() = ToProtoTimestamp(now_ - absl::Minutes(1));
  }, "error");
}

TEST_F(JudgeStatusTest, OldErrorsAndAFreshOutboxAreFine) {
  reply_.set_last_error("long ago");
  *reply_.mutable_last_error_at() = ToProtoTimestamp(now_ - absl::Hours(2));
  reply_.set_outbox_reports(1);
  *reply_.mutable_outbox_oldest_at() = ToProtoTimestamp(now_ - absl::Seconds(2));
  EXPECT_EQ(Judge().health, ReporterHealth::kHealthy);
}

TEST_F(JudgeStatusTest, PrintsTheFieldsAnOperatorNeeds) {
  reply_.set_stream_id(42);
  reply_.set_last_seq_written(7);
  reply_.set_last_seq_acked(6);
  reply_.set_guard_trips(1);
  reply_.set_last_guard_reason("roster version 3 is empty while 5 local users exist");
  std::ostringstream out;
  PrintStatus(reply_, Judge(), now_, out);
  EXPECT_THAT(out.str(), HasSubstr("node child-1: healthy"));
  EXPECT_THAT(out.str(), HasSubstr("stream:         42, seq written 7, acked 6"));
  EXPECT_THAT(out.str(), HasSubstr("1 trips, last: roster version 3 is empty"));
}

TEST_F(JudgeStatusTest, PrintsTheUsageModeAndWhyItDiffersFromTheConfig) {
  reply_.set_usage_mode_configured("follow");
  reply_.set_usage_mode_effective("follow");
  reply_.set_panel_adds_usage_atomically(true);
  reply_.set_usage_follow_users_moved(12);
  reply_.set_usage_follow_bytes_moved(-4096);
  std::ostringstream following;
  PrintStatus(reply_, Judge(), now_, following);
  EXPECT_THAT(following.str(),
              HasSubstr("usage mode:     follow, panel adds usage atomically (add_usage_json),"
                        " counters moved 12 times (-4096 bytes net)\n"));
  reply_.set_usage_mode_effective("watermark");
  reply_.set_panel_adds_usage_atomically(false);
  reply_.set_usage_mode_note("the panel has no add_usage_json procedure");
  std::ostringstream old_panel;
  PrintStatus(reply_, Judge(), now_, old_panel);
  EXPECT_THAT(old_panel.str(),
              HasSubstr("usage mode:     watermark (configured follow), panel adds usage by"
                        " read-modify-write\n  ! the panel has no add_usage_json procedure\n"));
}

TEST_F(JudgeStatusTest, PrintsHeldRemovalsAndSkippedUsers) {
  std::ostringstream quiet;
  PrintStatus(reply_, Judge(), now_, quiet);
  EXPECT_THAT(quiet.str(), HasSubstr("held removals:  0\n"));
  EXPECT_THAT(quiet.str(), HasSubstr("skipped users:  0\n"));

  reply_.set_held_removals(16);
  reply_.set_held_removals_reason("roster version 9 would have disabled 16 of 60 local users");
  *reply_.mutable_held_removals_since() = ToProtoTimestamp(now_ - absl::Minutes(3));
  for (int i = 0; i < 25; ++i) {
    auto* s = reply_.add_skipped_users();
    s->set_uuid(absl::StrCat("uuid-", i));
    s->set_reason("the child's database refused it: Data too long for column 'name'");
  }
  std::ostringstream out;
  PrintStatus(reply_, Judge(), now_, out);
  EXPECT_THAT(out.str(), HasSubstr("held removals:  16 since "));
  EXPECT_THAT(out.str(), HasSubstr("(3m ago) (approve: hiddify-sync-reporter approve-removals)"));
  EXPECT_THAT(out.str(), HasSubstr("held because:  roster version 9 would have disabled 16 of 60"));
  EXPECT_THAT(out.str(), HasSubstr("skipped users:  25\n  uuid-0: the child's database refused it: Data too long"));
  EXPECT_THAT(out.str(), HasSubstr("  uuid-19: "));
  EXPECT_THAT(out.str(), Not(HasSubstr("  uuid-20: ")));
  EXPECT_THAT(out.str(), HasSubstr("... and 5 more"));
}

}  // namespace
}  // namespace hsync::reporter
