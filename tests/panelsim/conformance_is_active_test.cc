// Conformance of panelsim's is_active with PANEL.md §3: quota (usage equal to
// the limit is still active), package days (the last active day is
// start_date + package_days), future start dates, negative package_days
// without a start date, the enable switch; mode plays no part.
#include "absl/strings/str_cat.h"
#include "tests/panelsim/conformance_support.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

class PanelsimIsActiveTest : public PanelsimConformanceTest {
 protected:
  static void SetUpTestSuite() { StartPanelsim(); }
  void TearDown() override { SetToday(kConformanceToday); }

  void SetToday(const std::string& day) {
    const HttpResponse r = Control("POST", "/_sim/clock", json{{"today", day}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  bool IsActive(const std::string& uuid) { return GetUser(uuid)["is_active"].get<bool>(); }
  // Whether the list agrees with the single-user answer.
  bool IsActiveInList(const std::string& uuid) {
    for (const json& u : ParseJson(Api("GET", "admin/user/").body)) {
      if (u["uuid"] == uuid) return u["is_active"].get<bool>();
    }
    ADD_FAILURE() << uuid << " not listed";
    return false;
  }
};

TEST_F(PanelsimIsActiveTest, QuotaAtBelowAndAbove) {
  const json u = CreateUser({{"name", "quota"}, {"usage_limit_GB", 1}, {"current_usage_GB", 0.5}});
  const std::string uuid = u["uuid"];
  EXPECT_TRUE(u["is_active"]);
  // Exactly at the limit: still active.
  SqlExec(absl::StrCat("UPDATE user SET current_usage = usage_limit WHERE uuid = '", uuid, "'"));
  EXPECT_TRUE(IsActive(uuid));
  EXPECT_TRUE(IsActiveInList(uuid));
  // One byte above: inactive.
  SqlExec(absl::StrCat("UPDATE user SET current_usage = usage_limit + 1 WHERE uuid = '", uuid, "'"));
  EXPECT_FALSE(IsActive(uuid));
  EXPECT_FALSE(IsActiveInList(uuid));
  // Through the API as well.
  const HttpResponse r = PatchUser(uuid, {{"current_usage_GB", 0.999}});
  EXPECT_TRUE(ParseJson(r.body)["is_active"]);
}

TEST_F(PanelsimIsActiveTest, LastPackageDayAndTheDayAfter) {
  const json u = CreateUser({{"name", "days"}, {"package_days", 10}, {"start_date", "2030-06-05"}});
  const std::string uuid = u["uuid"];
  SetToday("2030-06-15");  // start + 10: the last active day
  EXPECT_TRUE(IsActive(uuid));
  SetToday("2030-06-16");  // the day after
  EXPECT_FALSE(IsActive(uuid));
  EXPECT_FALSE(IsActiveInList(uuid));
  SetToday("2030-06-05");
  EXPECT_TRUE(IsActive(uuid));
}

TEST_F(PanelsimIsActiveTest, FutureStartDateIsActive) {
  const json u = CreateUser({{"name", "future"}, {"package_days", 1}, {"start_date", "2031-01-01"}});
  EXPECT_TRUE(u["is_active"]);
}

TEST_F(PanelsimIsActiveTest, PackageDaysWithoutStartDate) {
  json u = CreateUser({{"name", "negative"}, {"package_days", -1}});
  EXPECT_EQ(u["start_date"], nullptr);
  EXPECT_FALSE(u["is_active"]);
  u = CreateUser({{"name", "zero"}, {"package_days", 0}});
  EXPECT_TRUE(u["is_active"]);
}

TEST_F(PanelsimIsActiveTest, DisabledIsInactiveWhateverElse) {
  const json u = CreateUser({{"name", "disabled"}, {"enable", false}});
  EXPECT_FALSE(u["is_active"]);
  const json back = ParseJson(PatchUser(u["uuid"], {{"enable", true}}).body);
  EXPECT_TRUE(back["is_active"]);
}

TEST_F(PanelsimIsActiveTest, ModePlaysNoPart) {
  for (const char* mode : {"no_reset", "monthly", "weekly", "daily"}) {
    const json u = CreateUser({{"name", mode}, {"mode", mode}, {"package_days", 30},
                               {"start_date", "2030-06-01"}});
    EXPECT_TRUE(u["is_active"]) << mode;
  }
}

}  // namespace
}  // namespace hsync::testing
