// The panel generations and the request cost model (README.md, "A Hiddify
// server"): 12.3 has add_usage_json and starts no apply run on API writes;
// 12.2 starts one per write (exit 12 while one is active); 10.80 has no
// add_usage_json and adds usage by read-modify-write; core_type singbox;
// API requests served one at a time with their simulated cost on busy_ms.
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/panelsim/conformance_support.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

class PanelsimGenerationTest : public PanelsimConformanceTest {
 protected:
  static json Counters() { return ParseJson(Control("GET", "/_sim/counters").body); }
  static int64_t AddUsageJsonProcedures() {
    const ResultSet rs = Sql(
        "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() "
        "AND ROUTINE_NAME = 'add_usage_json'");
    return std::stoll(rs.rows[0][0].value_or("-1"));
  }
  static bool InCore(const std::string& core, const std::string& uuid) {
    const json cores = ParseJson(Control("GET", "/_sim/cores").body);
    for (const json& u : cores[core]) {
      if (u == uuid) return true;
    }
    return false;
  }
  static std::string Version() { return ParseJson(Api("GET", "panel/info/").body)["version"]; }
};

TEST_F(PanelsimGenerationTest, Panel123HasAddUsageJsonAndApiWritesStartNoRun) {
  StartPanelsim({"--apply-duration-ms", "50"});
  EXPECT_EQ(Version(), "12.3.0");
  EXPECT_EQ(AddUsageJsonProcedures(), 1);
  const std::string uuid = CreateUser({{"name", "g123"}})["uuid"];
  ASSERT_EQ(PatchUser(uuid, json::object()).status, 200);
  ASSERT_EQ(Api("DELETE", absl::StrCat("admin/user/", uuid, "/")).status, 200);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Counters()["apply_runs"], 0);
}

TEST_F(PanelsimGenerationTest, Panel122StartsOneApplyRunPerApiWrite) {
  StartPanelsim({"--generation", "12.2", "--apply-duration-ms", "700"});
  EXPECT_EQ(Version(), "12.2.0");
  EXPECT_EQ(AddUsageJsonProcedures(), 1);
  const std::string uuid = CreateUser({{"name", "g122"}})["uuid"];  // starts a run
  ASSERT_EQ(PatchUser(uuid, json::object()).status, 200);          // refused: busy
  ASSERT_EQ(PatchUser(uuid, {{"comment", "x"}}).status, 200);        // refused: busy
  ASSERT_TRUE(WaitFor([] { return Counters()["apply_runs"] == 1; }, absl::Seconds(5)));
  EXPECT_EQ(Counters()["apply_busy"], 2);
  // The run read the database at its start: the created user is in sing-box.
  ASSERT_TRUE(WaitFor([] { return Counters()["singbox_restarts"] == 1; }, absl::Seconds(5)));
  EXPECT_TRUE(InCore("singbox", uuid));
  // Idle again: the next write starts the next run. GETs and errors start none.
  GetUser(uuid);
  EXPECT_EQ(PatchUser(NewUuid(), json::object()).status, 404);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Counters()["apply_runs"], 1);
  ASSERT_EQ(Api("DELETE", absl::StrCat("admin/user/", uuid, "/")).status, 200);
  ASSERT_TRUE(WaitFor([] { return Counters()["apply_runs"] == 2; }, absl::Seconds(5)));
}

TEST_F(PanelsimGenerationTest, Panel1080HasNoAddUsageJsonAndStillAddsUsage) {
  StartPanelsim({"--generation", "10.80", "--usage-task-interval-ms", "0"});
  EXPECT_EQ(Version(), "10.80.0");
  EXPECT_EQ(AddUsageJsonProcedures(), 0);
  const std::string uuid = CreateUser({{"name", "g1080"}})["uuid"];
  ASSERT_EQ(Control("POST", "/_sim/carry_traffic", json{{"uuid", uuid}, {"bytes", 777}}.dump()).status,
            200);
  ASSERT_EQ(Control("POST", "/_sim/usage_task").status, 200);
  EXPECT_EQ(CurrentUsage(uuid), 777);
  EXPECT_EQ(UserColumn(uuid, "start_date"), kConformanceToday);
}

TEST_F(PanelsimGenerationTest, CoreTypeSingboxServesEverythingThroughApplyRuns) {
  StartPanelsim({"--core-type", "singbox", "--apply-duration-ms", "50"});
  EXPECT_EQ(Sql("SELECT value FROM str_config WHERE `key` = 'core_type'").rows[0][0], "singbox");
  const std::string uuid = CreateUser({{"name", "gsb"}})["uuid"];
  json cores = ParseJson(Control("GET", "/_sim/cores").body);
  EXPECT_EQ(cores["core_type"], "singbox");
  EXPECT_TRUE(cores["xray"].empty()) << "no xray with core_type singbox";
  EXPECT_FALSE(InCore("singbox", uuid)) << "sing-box follows apply runs only";
  ASSERT_EQ(ParseJson(Control("POST", "/_sim/apply_users").body)["exit"], 0);
  EXPECT_TRUE(InCore("singbox", uuid));
  EXPECT_TRUE(ParseJson(Control("GET", "/_sim/cores").body)["xray"].empty());
}

TEST_F(PanelsimGenerationTest, RequestsAreServedOneAtATimeAndCostBusyTime) {
  StartPanelsim({"--patch-cost-ms", "150", "--list-cost-us-per-user", "20000"});
  const std::string uuid = CreateUser({{"name", "cost"}})["uuid"];
  ASSERT_EQ(Control("DELETE", "/_sim/counters").status, 200);
  const absl::Time start = absl::Now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] { EXPECT_EQ(PatchUser(uuid, json::object()).status, 200); });
  }
  for (std::thread& t : clients) t.join();
  const absl::Duration elapsed = absl::Now() - start;
  // Four 150 ms PATCHes one after the other, whatever the clients' parallelism.
  EXPECT_GE(elapsed, absl::Milliseconds(600));
  const int64_t busy = Counters()["busy_ms"];
  EXPECT_GE(busy, 600);
  EXPECT_LE(busy, absl::ToInt64Milliseconds(elapsed) + 5);
  // A list costs per user listed (one user here: >= 20 ms), control calls nothing.
  ASSERT_EQ(Control("DELETE", "/_sim/counters").status, 200);
  ASSERT_EQ(Api("GET", "admin/user/").status, 200);
  EXPECT_GE(Counters()["busy_ms"], 20);
  EXPECT_EQ(Counters()["sessions_created"], 1) << "a call without a cookie makes a session";
}

}  // namespace
}  // namespace hsync::testing
