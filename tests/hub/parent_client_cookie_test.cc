// The hub keeps the parent's session cookie (PANEL.md §1: every call without
// it creates a server-side session in the panel's Redis that lives 10 days):
// ParentClient against a real panelsim process over loopback HTTP, counting
// the sessions panelsim created.
#include <gtest/gtest.h>

#include "common/units.h"
#include "hub/parent/parent_client.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/hub/parent_client_test_panel.h"

namespace hsync::hub {
namespace {

using testing::TestPanel;
using testing::TestUuid;

int64_t SessionsCreated(TestPanel& panel) {
  const nlohmann::json counters = panel.Counters();
  return counters.value("sessions_created", int64_t{-1});
}

TEST(ParentClientCookieTest, ManyCallsOfOneClientCreateOneSession) {
  auto panel = TestPanel::Start();
  ASSERT_NE(panel, nullptr);
  const std::string known = TestUuid(1, 0xc0c);
  panel->CreateUser(known, 10 * kBytesPerGiB);
  panel->ResetCounters();

  auto client = panel->Client();
  ASSERT_NE(client, nullptr);
  constexpr int kRounds = 4;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(client->Ping().ok());
    ASSERT_TRUE(client->ListUsers().ok());
    ASSERT_TRUE(client->GetUser(known).ok());
    UserPatch patch;
    patch.current_usage_bytes = uint64_t{1000} * (i + 1);
    ASSERT_TRUE(client->PatchUser(known, patch).ok());
    // An error answer (404) is a logged-in answer too: same session.
    EXPECT_EQ(client->GetUser(TestUuid(2, 0xc0c)).status().code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(panel->Calls("GET ping"), kRounds);
  EXPECT_EQ(panel->Calls("PATCH patch_user"), kRounds);
  EXPECT_EQ(SessionsCreated(*panel), 1);

  // Another client (a restarted hub) has its own jar: one more session, and
  // the first client still uses its own.
  auto second = panel->Client();
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->Ping().ok());
  ASSERT_TRUE(second->ListUsers().ok());
  ASSERT_TRUE(client->Ping().ok());
  EXPECT_EQ(SessionsCreated(*panel), 2);
}

}  // namespace
}  // namespace hsync::hub
