// The whole chain with real processes (parent panelsim, hub, child panelsim
// with cores, the reporter binary): a user created on the parent reaches the
// child's xray; the reporter SIGKILLed after the roster transaction committed
// but before the core sync succeeded syncs it after its restart.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/e2e_system.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
namespace {

bool InXray(PanelsimRunner& panel, const std::string& uuid) {
  auto r = panel.Control("GET", "/_sim/cores");
  if (!r.ok()) return false;
  nlohmann::json cores = nlohmann::json::parse(r->body, nullptr, false);
  if (!cores.is_object() || !cores.contains("xray")) return false;
  for (const auto& u : cores["xray"]) {
    if (u == uuid) return true;
  }
  return false;
}

TEST(CoreSyncE2eTest, AReporterKilledBeforeTheCoreSyncSyncsAfterItsRestart) {
  E2eOptions options;
  options.parent_users = 3;
  auto sys = E2eSystem::Start(options);
  ASSERT_TRUE(sys.ok()) << sys.status();
  ASSERT_TRUE((*sys)->WaitRosterApplied(absl::Seconds(20)).ok());

  // A created user reaches the child's xray through the child panel's API.
  const std::string first = RandomUuid();
  const absl::Time created = absl::Now();
  ASSERT_TRUE((*sys)->parent().Api("POST", "admin/user/",
                                   absl::StrCat(R"({"uuid":")", first, R"(","name":"first"})")).ok());
  ASSERT_TRUE(WaitFor([&] { return InXray((*sys)->child(), first); }, absl::Seconds(15)));
  std::cout << "create on the parent -> in the child's xray: "
            << absl::FormatDuration(absl::Now() - created) << "\n";

  // The child panel refuses every PATCH: the roster commits, the sync cannot.
  ASSERT_TRUE((*sys)->child().Control("POST", "/_sim/faults",
                                      R"({"route":"patch_user","error_rate":1.0})").ok());
  const std::string second = RandomUuid();
  ASSERT_TRUE((*sys)->parent().Api("POST", "admin/user/",
                                   absl::StrCat(R"({"uuid":")", second, R"(","name":"second"})")).ok());
  ASSERT_TRUE(WaitFor([&] { return !(*sys)->ChildColumn(second, "id").empty(); }, absl::Seconds(15)));
  absl::SleepFor(absl::Milliseconds(500));  // a few failed attempts
  EXPECT_FALSE(InXray((*sys)->child(), second));
  (*sys)->reporter().Kill();  // SIGKILL: no chance to finish anything
  ASSERT_TRUE((*sys)->child().Control("DELETE", "/_sim/faults").ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(InXray((*sys)->child(), second)) << "nobody else syncs it";
  ASSERT_TRUE((*sys)->reporter().Start().ok());
  ASSERT_TRUE(WaitFor([&] { return InXray((*sys)->child(), second); }, absl::Seconds(15)));
  EXPECT_TRUE(InXray((*sys)->child(), first));
}

}  // namespace
}  // namespace hsync::testing
