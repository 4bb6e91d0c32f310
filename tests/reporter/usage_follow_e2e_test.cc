// usage_mode = "follow" end to end, every part real: panelsim parent, the hub
// binary, a panelsim child of generation 12.3 (its cores carry the traffic,
// its usage task adds it every 200 ms with add_usage_json) and the reporter
// binary, SIGKILLed at random moments while traffic, collects and roster
// updates run. Every byte reaches the parent exactly once; once settled,
// every child counter equals the parent's; a reset on the parent reaches the
// child's counter. A 10.80 child (no add_usage_json) is detected and its
// counters are left alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "tests/reporter/e2e_system.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
namespace {

using ::testing::HasSubstr;

class UsageFollowE2eTest : public ::testing::Test {
 protected:
  void StartSystem(std::vector<std::string> child_args = {}) {
    E2eOptions options;
    options.parent_users = 12;
    options.child_extra_args = std::move(child_args);
    auto sys = E2eSystem::Start(options);
    ASSERT_TRUE(sys.ok()) << sys.status();
    sys_ = *std::move(sys);
    ASSERT_TRUE(sys_->WaitRosterApplied(absl::Seconds(30)).ok()) << sys_->reporter().Log();
    // xray picks up the users the roster created (the cores carry the traffic).
    auto restarted = sys_->child().Control("POST", "/_sim/xray_restart");
    ASSERT_TRUE(restarted.ok() && restarted->status == 200);
    auto parent = sys_->ParentUsage();
    ASSERT_TRUE(parent.ok());
    before_ = *parent;
  }

  // Traffic for `d`, the reporter SIGKILLed and restarted `kills` times; then
  // one more usage-task run (the cores' last bytes reach the table) and
  // everything settled.
  void TrafficWithKills(absl::Duration d, int kills, uint32_t seed) {
    ASSERT_TRUE(sys_->SetTraffic(true).ok());
    std::mt19937 rng(seed);
    for (int i = 0; i < kills; ++i) {
      absl::SleepFor(d / (kills + 1) + absl::Milliseconds(rng() % 400));
      sys_->reporter().Kill();
      ASSERT_TRUE(sys_->reporter().Start().ok()) << sys_->reporter().Log();
    }
    absl::SleepFor(d / (kills + 1));
    ASSERT_TRUE(sys_->SetTraffic(false).ok());
    auto run = sys_->child().Control("POST", "/_sim/usage_task");
    ASSERT_TRUE(run.ok() && run->status == 200);
    absl::Status settled = sys_->WaitSettled(absl::Now(), absl::Seconds(60));
    ASSERT_TRUE(settled.ok()) << settled;
  }

  // Waits until every child counter equals the parent's (the roster carried
  // the hub's last applies); describes the last difference.
  void ExpectChildEqualsParent() {
    std::string diff;
    const bool equal = WaitFor(
        [&] {
          auto parent = sys_->ParentUsage();
          auto child = sys_->ChildUsage();
          if (!parent.ok() || !child.ok()) return false;
          for (const auto& [uuid, bytes] : *parent) {
            if ((*child)[uuid] != bytes) {
              diff = absl::StrCat(uuid, ": child ", (*child)[uuid], ", parent ", bytes);
              return false;
            }
          }
          return true;
        },
        absl::Seconds(20));
    EXPECT_TRUE(equal) << diff;
  }

  std::unique_ptr<E2eSystem> sys_;
  std::map<std::string, uint64_t> before_;
};

TEST_F(UsageFollowE2eTest, ExactThroughKillsAndTheChildCounterFollowsTheParentAndItsReset) {
  ASSERT_NO_FATAL_FAILURE(StartSystem());
  auto status = sys_->ReporterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->usage_mode_effective(), "follow");
  EXPECT_TRUE(status->panel_adds_usage_atomically());

  ASSERT_NO_FATAL_FAILURE(TrafficWithKills(absl::Seconds(6), 2, 11));
  absl::Status exact = sys_->CheckExact(before_);
  ASSERT_TRUE(exact.ok()) << exact;
  ExpectChildEqualsParent();

  // The parent resets half of its users (nothing is in flight now).
  auto mid = sys_->ParentUsage();
  ASSERT_TRUE(mid.ok());
  std::vector<std::string> reset;
  for (const auto& [uuid, bytes] : *mid) {
    if (bytes > 0 && reset.size() < mid->size() / 2) reset.push_back(uuid);
  }
  ASSERT_FALSE(reset.empty());
  for (const auto& uuid : reset) {
    auto r = sys_->parent().Control("POST", "/_sim/reset", absl::StrCat(R"({"uuid":")", uuid, R"("})"));
    ASSERT_TRUE(r.ok() && r->status == 200);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto child = sys_->ChildUsage();
        if (!child.ok()) return false;
        for (const auto& uuid : reset) {
          if ((*child)[uuid] != 0) return false;
        }
        return true;
      },
      absl::Seconds(20)))
      << "the parent's reset did not reach the child's counter";
  EXPECT_EQ(sys_->ChildColumn(reset[0], "last_reset_time"), FormatPanelDate(PanelToday()));

  // More traffic after the reset: per user, the parent grows by exactly what
  // the child carried since.
  auto after_reset = sys_->ParentUsage();
  auto generated_before = sys_->Generated();
  ASSERT_TRUE(after_reset.ok() && generated_before.ok());
  ASSERT_NO_FATAL_FAILURE(TrafficWithKills(absl::Seconds(6), 2, 12));
  auto parent = sys_->ParentUsage();
  auto generated = sys_->Generated();
  ASSERT_TRUE(parent.ok() && generated.ok());
  uint64_t total = 0;
  for (const auto& [uuid, bytes] : *parent) {
    const uint64_t carried = (*generated)[uuid] - (*generated_before)[uuid];
    EXPECT_EQ(bytes - (*after_reset)[uuid], carried) << uuid;
    total += carried;
  }
  EXPECT_GT(total, 0u);
  std::cout << "after the reset: " << total << " bytes carried on the child, exact on the parent\n";
  ExpectChildEqualsParent();
}

TEST_F(UsageFollowE2eTest, AnOldPanelIsDetectedAndItsCountersAreLeftAlone) {
  ASSERT_NO_FATAL_FAILURE(StartSystem({"--generation", "10.80"}));
  auto status = sys_->ReporterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->usage_mode_configured(), "follow");
  EXPECT_EQ(status->usage_mode_effective(), "watermark");
  EXPECT_FALSE(status->panel_adds_usage_atomically());
  EXPECT_THAT(status->usage_mode_note(), HasSubstr("add_usage_json"));
  EXPECT_THAT(sys_->reporter().Log(), HasSubstr("no add_usage_json procedure"));
  auto [code, text] = sys_->reporter().StatusCommand();
  EXPECT_THAT(text, HasSubstr("usage mode:     watermark (configured follow)"));

  ASSERT_NO_FATAL_FAILURE(TrafficWithKills(absl::Seconds(4), 1, 13));
  absl::Status exact = sys_->CheckExact(before_);
  EXPECT_TRUE(exact.ok()) << exact;
  // The child's counters hold only its own traffic: no offset was written.
  auto child = sys_->ChildUsage();
  auto generated = sys_->Generated();
  ASSERT_TRUE(child.ok() && generated.ok());
  for (const auto& [uuid, bytes] : *child) EXPECT_EQ(bytes, (*generated)[uuid]) << uuid;
}

}  // namespace
}  // namespace hsync::testing
