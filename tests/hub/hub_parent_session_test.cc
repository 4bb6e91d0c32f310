// The real hub binary against panelsim: every call of one hub run — the
// roster poller's list reads and the applier's GETs and PATCHes, from two
// threads — carries the panel's session cookie, so the panel creates ONE
// session per hub run (PANEL.md §1: a cookie-less call costs a Redis key for
// 10 days). GetStatus shows the paced poll interval and the PATCH budget.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/units.h"
#include "tests/hub/hub_harness.h"
#include "tests/hub/parent_client_test_panel.h"

namespace hsync::hub::testing {
namespace {

int64_t SessionsCreated(TestPanel& panel) {
  return panel.Counters().value("sessions_created", int64_t{-1});
}

TEST(HubParentSessionTest, OneHubRunIsOnePanelSession) {
  auto panel = TestPanel::Start();
  ASSERT_NE(panel, nullptr);
  SimulatedChild::Deltas deltas;
  for (int i = 0; i < 5; ++i) {
    panel->CreateUser(TestUserUuid(i, 0x5e5), 10 * kBytesPerGiB);
    deltas.emplace_back(TestUserUuid(i, 0x5e5), 1000 + i);
  }
  panel->ResetCounters();

  HubSetup setup;
  setup.parent_url = panel->runner().base_url();
  setup.parent_api_key = panel->runner().api_key();
  setup.node_tokens = MakeNodeTokens(1);
  setup.poll_interval = "1s";
  setup.max_patches_per_minute = 600;
  auto hub = HubProcess::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  SimulatedChild child("node-0", (*hub)->setup().node_tokens.at("node-0"), (*hub)->channel());
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(child.Report(deltas).ok());
    ASSERT_TRUE((*hub)->WaitUntilApplied(absl::Seconds(20)));
  }
  // A few roster reads as well.
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (panel->Calls("GET list_users") < 3 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GE(panel->Calls("GET list_users"), 3);
  EXPECT_GE(panel->Calls("GET get_user"), 15);
  EXPECT_GE(panel->Calls("PATCH patch_user"), 15);
  EXPECT_EQ(SessionsCreated(*panel), 1);

  auto status = (*hub)->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->roster_poll_interval_effective_ms(), 1000u);
  EXPECT_EQ(status->patch_budget_per_minute(), 600u);
  EXPECT_GE(status->patches_last_minute(), 15u);

  // A restarted hub is a new run: one more session, not one per call.
  ASSERT_TRUE((*hub)->Terminate().ok());
  ASSERT_TRUE((*hub)->Restart().ok());
  ASSERT_TRUE(child.Report(deltas).ok());
  ASSERT_TRUE((*hub)->WaitUntilApplied(absl::Seconds(20)));
  EXPECT_EQ(SessionsCreated(*panel), 2);
}

}  // namespace
}  // namespace hsync::hub::testing
