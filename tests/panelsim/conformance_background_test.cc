// panelsim's own background behaviour (PANEL.md §3): traffic added (by
// read-modify-write on 10.80, and the writes it loses), last_online/start_date
// updates, and periodic resets by mode.
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/panelsim/conformance_support.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

class PanelsimBackgroundTest : public PanelsimConformanceTest {
 protected:
  static void SetUpTestSuite() { StartPanelsim({"--traffic-rmw-gap-ms", "1500"}); }
  void TearDown() override { SetToday(kConformanceToday); }

  void SetToday(const std::string& day) {
    ASSERT_EQ(Control("POST", "/_sim/clock", json{{"today", day}}.dump()).status, 200);
  }
  json Traffic() { return ParseJson(Control("GET", "/_sim/traffic").body); }
};

TEST_F(PanelsimBackgroundTest, AddTrafficIsReadModifyWriteAndStartsThePackage) {
  const json u = CreateUser({{"name", "traffic"}, {"current_usage_GB", 1}});
  const std::string uuid = u["uuid"];
  const HttpResponse r =
      Control("POST", "/_sim/add_traffic", json{{"uuid", uuid}, {"bytes", 1000}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(CurrentUsage(uuid), (int64_t{1} << 30) + 1000);
  const json after = GetUser(uuid);
  EXPECT_EQ(after["start_date"], kConformanceToday);
  EXPECT_EQ(after["last_online"].get<std::string>().substr(0, 10), kConformanceToday);
  EXPECT_EQ(Traffic()["per_user"][uuid], 1000);
  EXPECT_EQ(Control("POST", "/_sim/add_traffic", json{{"uuid", NewUuid()}, {"bytes", 1}}.dump()).status,
            404);
}

TEST_F(PanelsimBackgroundTest, ReadModifyWriteRaceLosesAConcurrentPatchOn1080) {
  // Panels up to 10.80 add usage in Python (12.x adds atomically in SQL).
  StartPanelsim({"--generation", "10.80", "--traffic-rmw-gap-ms", "1500"});
  const json u = CreateUser({{"name", "race"}});
  const std::string uuid = u["uuid"];
  // The traffic add reads 0, sleeps 1.5 s, then writes 0 + 1000.
  std::thread traffic([&] {
    Control("POST", "/_sim/add_traffic", json{{"uuid", uuid}, {"bytes", 1000}}.dump());
  });
  absl::SleepFor(absl::Milliseconds(500));
  // A PATCH inside the gap succeeds...
  const HttpResponse patch = PatchUser(uuid, {{"current_usage_GB", 5}});
  ASSERT_EQ(patch.status, 200);
  EXPECT_EQ(CurrentUsage(uuid), int64_t{5} << 30);
  traffic.join();
  // ... and is overwritten by the traffic task's absolute write.
  EXPECT_EQ(CurrentUsage(uuid), 1000);
  StartPanelsim({"--traffic-rmw-gap-ms", "1500"});
}

TEST_F(PanelsimBackgroundTest, UserResetSetsZeroAndLastResetTime) {
  const json u = CreateUser({{"name", "reset-one"}, {"current_usage_GB", 3}});
  SetToday("2030-07-01");
  ASSERT_EQ(Control("POST", "/_sim/reset", json{{"uuid", u["uuid"]}}.dump()).status, 200);
  const json after = GetUser(u["uuid"]);
  EXPECT_EQ(after["current_usage_GB"], 0.0);
  EXPECT_EQ(after["last_reset_time"], "2030-07-01 00:00:00");
  EXPECT_EQ(Control("POST", "/_sim/reset", json{{"uuid", NewUuid()}}.dump()).status, 404);
}

TEST_F(PanelsimBackgroundTest, PeriodicResetsFollowTheMode) {
  // All started on 2030-06-01, last reset on 2030-06-01, 1 GiB used, 100 days.
  std::map<std::string, std::string> uuid_of;
  for (const char* mode : {"no_reset", "daily", "weekly", "monthly"}) {
    const json u = CreateUser({{"name", absl::StrCat("mode-", mode)}, {"mode", mode},
                               {"package_days", 100}, {"start_date", "2030-06-01"},
                               {"current_usage_GB", 1}});
    uuid_of[mode] = u["uuid"];
    SqlExec(absl::StrCat("UPDATE user SET last_reset_time = '2030-06-01' WHERE uuid = '",
                         uuid_of[mode], "'"));
  }
  const auto refill = [&] {
    SqlExec("UPDATE user SET current_usage = 1073741824 WHERE name LIKE 'mode-%'");
  };
  const auto reset_now = [&](const std::string& today) {
    SetToday(today);
    refill();
    ASSERT_EQ(Control("POST", "/_sim/reset", "{}").status, 200);
  };
  const auto was_reset = [&](const char* mode) { return CurrentUsage(uuid_of[mode]) == 0; };

  reset_now("2030-06-02");  // day 1
  EXPECT_FALSE(was_reset("no_reset"));
  EXPECT_TRUE(was_reset("daily"));
  EXPECT_FALSE(was_reset("weekly"));
  EXPECT_FALSE(was_reset("monthly"));
  EXPECT_EQ(UserColumn(uuid_of["daily"], "last_reset_time"), "2030-06-02");

  reset_now("2030-06-02");  // the same day again: not twice
  EXPECT_FALSE(was_reset("daily"));

  reset_now("2030-06-08");  // day 7
  EXPECT_TRUE(was_reset("daily"));
  EXPECT_TRUE(was_reset("weekly"));
  EXPECT_FALSE(was_reset("monthly"));

  reset_now("2030-07-01");  // day 30
  EXPECT_TRUE(was_reset("monthly"));
  EXPECT_FALSE(was_reset("weekly"));  // 30 is no multiple of 7
  EXPECT_FALSE(was_reset("no_reset"));

  reset_now("2030-09-10");  // day 101: the package is over, nobody resets
  EXPECT_FALSE(was_reset("daily"));
}

TEST_F(PanelsimBackgroundTest, GeneratorTotalsEqualTheDatabaseIncrease) {
  StartPanelsim({"--traffic-interval-ms", "50", "--traffic-users-per-tick", "3",
                 "--traffic-max-bytes", "1000000", "--seed", "7"});
  std::vector<std::string> uuids;
  for (int i = 0; i < 5; ++i) uuids.push_back(CreateUser({{"name", absl::StrCat("gen-", i)}})["uuid"]);
  // The panel adds every created user to xray; the PATCH takes it out again.
  const std::string disabled = CreateUser({{"name", "gen-disabled"}})["uuid"];
  ASSERT_EQ(PatchUser(disabled, {{"enable", false}}).status, 200);
  // Let it run, then pause (waits for the tick in flight) and compare.
  ASSERT_TRUE(WaitFor([&] { return Traffic()["total_bytes"].get<int64_t>() > 0; }, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(500));
  const json paused = ParseJson(Control("POST", "/_sim/traffic", R"({"enabled":false})").body);
  EXPECT_FALSE(paused["enabled"]);
  const json traffic = Traffic();
  int64_t db_total = 0;
  for (const std::string& uuid : uuids) {
    const int64_t usage = CurrentUsage(uuid);
    db_total += usage;
    EXPECT_EQ(usage, traffic["per_user"].value(uuid, int64_t{0})) << uuid;
  }
  EXPECT_EQ(db_total, traffic["total_bytes"].get<int64_t>());
  EXPECT_EQ(Sql("SELECT current_usage FROM user WHERE name = 'gen-disabled'").rows[0][0], "0");
  // Paused means paused.
  const int64_t ticks = ParseJson(Control("GET", "/_sim/counters").body)["traffic_ticks"];
  EXPECT_GT(ticks, 0);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(Traffic()["total_bytes"], traffic["total_bytes"]);
  EXPECT_EQ(ParseJson(Control("GET", "/_sim/counters").body)["traffic_ticks"], ticks);
}

TEST_F(PanelsimBackgroundTest, BackgroundResetTimerResetsDueUsers) {
  StartPanelsim({"--reset-interval-ms", "100"});
  const json u = CreateUser({{"name", "timer"}, {"mode", "daily"}, {"package_days", 10},
                             {"start_date", "2030-06-10"}, {"current_usage_GB", 1}});
  SqlExec(absl::StrCat("UPDATE user SET last_reset_time = '2030-06-14' WHERE uuid = '",
                       u["uuid"].get<std::string>(), "'"));
  EXPECT_TRUE(WaitFor([&] { return CurrentUsage(u["uuid"]) == 0; }, absl::Seconds(5)));
  EXPECT_EQ(UserColumn(u["uuid"], "last_reset_time"), kConformanceToday);
}

TEST_F(PanelsimBackgroundTest, RestartKeepsPortAndData) {
  StartPanelsim();
  const json u = CreateUser({{"name", "restart"}});
  const int port = panel().port();
  ASSERT_TRUE(panel().Restart().ok());
  EXPECT_EQ(panel().port(), port);
  EXPECT_EQ(GetUser(u["uuid"])["name"], "restart");
}

TEST_F(PanelsimBackgroundTest, SurvivesADatabaseRestart) {
  // Last in this binary: it restarts the shared MariaDB under panelsim.
  const json u = CreateUser({{"name", "db-restart"}});
  ASSERT_TRUE(SharedMariaDb().Stop(/*hard=*/false).ok());
  const HttpResponse down = Api("GET", "admin/user/");
  EXPECT_EQ(down.status, 500);
  ASSERT_TRUE(SharedMariaDb().StartAgain().ok());
  ReconnectDb();
  // Every worker's old connection is dead; each reconnects on first use.
  for (int i = 0; i < 40; ++i) {
    const HttpResponse r = Api("GET", absl::StrCat("admin/user/", u["uuid"].get<std::string>(), "/"));
    ASSERT_EQ(r.status, 200) << r.body;
  }
}

}  // namespace
}  // namespace hsync::testing
