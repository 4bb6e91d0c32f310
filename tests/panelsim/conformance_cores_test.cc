// The cores of a Hiddify server (PANEL.md §3-§4), as panelsim plays them:
// xray follows the panel's API calls and the usage task, never SQL writes;
// the usage task re-checks is_active only for users with traffic and removes
// zombies; the reset job follows user_should_reset(); install.sh runs render
// sing-box/WireGuard from the database read at their start and exit 12 while
// another runs; only users in a core carry traffic.
#include <sys/wait.h>

#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/panelsim/conformance_support.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

class PanelsimCoresTest : public PanelsimConformanceTest {
 protected:
  // The usage task only on demand, apply runs of 1.5 s.
  static void SetUpTestSuite() {
    StartPanelsim({"--usage-task-interval-ms", "0", "--apply-duration-ms", "1500"});
  }
  void TearDown() override {
    ASSERT_EQ(Control("POST", "/_sim/clock", json{{"today", kConformanceToday}}.dump()).status, 200);
  }

  static json Cores() { return ParseJson(Control("GET", "/_sim/cores").body); }
  static bool In(const json& cores, const std::string& core, const std::string& uuid) {
    for (const json& u : cores[core]) {
      if (u == uuid) return true;
    }
    return false;
  }
  static json Counters() { return ParseJson(Control("GET", "/_sim/counters").body); }
  static json DriverCalls(const std::string& uuid) {
    const json calls = Counters()["driver_calls"];
    return calls.contains(uuid) ? calls[uuid] : json{{"add", 0}, {"remove", 0}};
  }
  static int64_t Carry(const std::string& uuid, int64_t bytes) {
    const HttpResponse r =
        Control("POST", "/_sim/carry_traffic", json{{"uuid", uuid}, {"bytes", bytes}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return ParseJson(r.body)["carried"].get<int64_t>();
  }
  static int UsageTask() {
    const HttpResponse r = Control("POST", "/_sim/usage_task");
    EXPECT_EQ(r.status, 200) << r.body;
    return ParseJson(r.body)["users"].get<int>();
  }
  // A user row written by SQL (what the reporter does on a child).
  static std::string InsertBySql(const std::string& name) {
    const std::string uuid = NewUuid();
    SqlExec(absl::StrCat(
        "INSERT INTO user (uuid, name, last_online, usage_limit, package_days, mode, "
        "current_usage, max_ips, enable, added_by) VALUES ('", uuid, "', '", name,
        "', '0001-01-01 00:00:00', 10737418240, 30, 'no_reset', 0, 100, 1, 1)"));
    return uuid;
  }
  // install.sh through panelsim-ctl; its exit code.
  static int Ctl(const std::string& args) {
    const std::string command =
        absl::StrCat(BuiltBinary("panelsim-ctl"), " --port ", panel().port(), " ", args);
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
};

TEST_F(PanelsimCoresTest, XrayFollowsApiCallsAndNotSqlWrites) {
  const std::string uuid = CreateUser({{"name", "cores-api"}})["uuid"];
  EXPECT_TRUE(In(Cores(), "xray", uuid));  // POST adds
  EXPECT_EQ(DriverCalls(uuid), json({{"add", 1}, {"remove", 0}}));

  SqlExec(absl::StrCat("UPDATE user SET enable = 0 WHERE uuid = '", uuid, "'"));
  EXPECT_TRUE(In(Cores(), "xray", uuid)) << "a block by SQL does not reach xray";
  ASSERT_EQ(PatchUser(uuid, json::object()).status, 200);
  EXPECT_FALSE(In(Cores(), "xray", uuid)) << "PATCH {} makes xray follow the row";
  EXPECT_EQ(DriverCalls(uuid), json({{"add", 1}, {"remove", 1}}));

  SqlExec(absl::StrCat("UPDATE user SET enable = 1 WHERE uuid = '", uuid, "'"));
  EXPECT_FALSE(In(Cores(), "xray", uuid)) << "an unblock by SQL does not reach xray";
  ASSERT_EQ(PatchUser(uuid, json::object()).status, 200);
  EXPECT_TRUE(In(Cores(), "xray", uuid));
  EXPECT_EQ(DriverCalls(uuid), json({{"add", 2}, {"remove", 2}}));

  // A 404 PATCH and a GET touch no core.
  EXPECT_EQ(PatchUser(NewUuid(), json::object()).status, 404);
  GetUser(uuid);
  EXPECT_EQ(DriverCalls(uuid), json({{"add", 2}, {"remove", 2}}));

  ASSERT_EQ(Api("DELETE", absl::StrCat("admin/user/", uuid, "/")).status, 200);
  EXPECT_FALSE(In(Cores(), "xray", uuid));
  EXPECT_EQ(DriverCalls(uuid)["remove"], 3);
}

TEST_F(PanelsimCoresTest, RowsWrittenBySqlReachXrayOnlyByRestartOrApi) {
  const std::string uuid = InsertBySql("cores-sql");
  json cores = Cores();
  EXPECT_FALSE(In(cores, "xray", uuid));
  EXPECT_FALSE(In(cores, "singbox", uuid));
  EXPECT_EQ(cores["core_type"], "xray");
  const HttpResponse restart = Control("POST", "/_sim/xray_restart");
  ASSERT_EQ(restart.status, 200) << restart.body;
  EXPECT_TRUE(In(Cores(), "xray", uuid));
  EXPECT_EQ(Counters()["xray_restarts"].get<int>(), 1);
  // The restart renders only active users with usage_limit > current_usage.
  SqlExec(absl::StrCat("UPDATE user SET current_usage = usage_limit WHERE uuid = '", uuid, "'"));
  ASSERT_EQ(Control("POST", "/_sim/xray_restart").status, 200);
  EXPECT_FALSE(In(Cores(), "xray", uuid)) << "usage equal to the limit is not rendered";
  EXPECT_EQ(Sql("SELECT value FROM str_config WHERE `key` = 'core_type'").rows[0][0], "xray");
}

TEST_F(PanelsimCoresTest, UsageTaskRechecksOnlyUsersWithTraffic) {
  const std::string with_traffic = CreateUser({{"name", "task-traffic"}})["uuid"];
  const std::string silent = CreateUser({{"name", "task-silent"}})["uuid"];
  UsageTask();  // nothing pending from earlier tests
  SqlExec(absl::StrCat("UPDATE user SET enable = 0 WHERE uuid IN ('", with_traffic, "', '", silent,
                       "')"));
  EXPECT_EQ(Carry(with_traffic, 1000), 1000);
  EXPECT_EQ(UsageTask(), 1);
  EXPECT_EQ(CurrentUsage(with_traffic), 1000) << "added by add_usage_json";
  EXPECT_EQ(UserColumn(with_traffic, "start_date"), kConformanceToday);
  EXPECT_EQ(UserColumn(with_traffic, "last_online")->substr(0, 10), kConformanceToday);
  EXPECT_EQ(CurrentUsage(silent), 0);
  const json cores = Cores();
  EXPECT_FALSE(In(cores, "xray", with_traffic)) << "blocked and seen with traffic: removed";
  EXPECT_TRUE(In(cores, "xray", silent)) << "no traffic in that run: not re-checked";
  EXPECT_EQ(DriverCalls(silent)["remove"], 0);
  // Out of every core it carries nothing more.
  EXPECT_EQ(Carry(with_traffic, 5), 0);
  EXPECT_EQ(Carry(InsertBySql("task-nocore"), 5), 0);
  EXPECT_GE(Counters()["usage_task_runs"].get<int>(), 2);
}

TEST_F(PanelsimCoresTest, UsageTaskRemovesZombies) {
  const std::string zombie = CreateUser({{"name", "zombie"}})["uuid"];
  const std::string alive = CreateUser({{"name", "alive"}})["uuid"];
  UsageTask();
  SqlExec(absl::StrCat("DELETE FROM user WHERE uuid = '", zombie, "'"));
  EXPECT_TRUE(In(Cores(), "xray", zombie));
  Carry(zombie, 10);
  EXPECT_EQ(UsageTask(), 1);
  const json cores = Cores();
  EXPECT_FALSE(In(cores, "xray", zombie)) << "enabled in xray, gone from the table";
  EXPECT_TRUE(In(cores, "xray", alive));
}

TEST_F(PanelsimCoresTest, ResetJobFollowsUserShouldReset) {
  // Started 2030-06-01 with 30 days; the conformance day is 2030-06-15.
  const auto make = [&](const std::string& name, const std::string& mode,
                        const std::string& last_reset, const std::string& start) {
    const std::string uuid =
        CreateUser({{"name", name}, {"mode", mode}, {"package_days", 30}, {"current_usage_GB", 2},
                    {"usage_limit_GB", 1}, {"start_date", "2030-06-01"}})["uuid"];
    SqlExec(absl::StrCat("UPDATE user SET last_reset_time = ", last_reset, ", start_date = ", start,
                         " WHERE uuid = '", uuid, "'"));
    // Over quota: make xray follow (PATCH {} removes an inactive user).
    EXPECT_EQ(PatchUser(uuid, json::object()).status, 200);
    return uuid;
  };
  const std::string never_reset = make("r-null", "monthly", "NULL", "'2030-06-01'");
  const std::string reset_today = make("r-today", "daily", "'2030-06-15'", "'2030-06-01'");
  const std::string no_start = make("r-nostart", "daily", "NULL", "NULL");
  const std::string weekly_due = make("r-weekly", "weekly", "'2030-06-01'", "'2030-06-01'");  // day 14
  const std::string monthly_not = make("r-monthly", "monthly", "'2030-06-01'", "'2030-06-01'");
  const std::string no_reset = make("r-noreset", "no_reset", "NULL", "'2030-06-01'");
  const std::string ended = make("r-ended", "daily", "NULL", "'2030-05-01'");  // over on 05-31
  EXPECT_FALSE(In(Cores(), "xray", never_reset));

  const HttpResponse r = Control("POST", "/_sim/reset_job");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ParseJson(r.body)["reset"], 2);
  const auto reset = [&](const std::string& uuid) { return CurrentUsage(uuid) == 0; };
  EXPECT_TRUE(reset(never_reset)) << "no last_reset_time: reset";
  EXPECT_FALSE(reset(reset_today)) << "reset today already";
  EXPECT_FALSE(reset(no_start)) << "no start date";
  EXPECT_TRUE(reset(weekly_due)) << "(today - start) % 7 == 0";
  EXPECT_FALSE(reset(monthly_not)) << "14 % 30 != 0";
  EXPECT_FALSE(reset(no_reset));
  EXPECT_FALSE(reset(ended)) << "package over";
  EXPECT_EQ(UserColumn(weekly_due, "last_reset_time"), kConformanceToday);
  // Reset users that became active are added back to xray; ended ones removed.
  const json cores = Cores();
  EXPECT_TRUE(In(cores, "xray", never_reset));
  EXPECT_TRUE(In(cores, "xray", weekly_due));
  EXPECT_FALSE(In(cores, "xray", reset_today));
  EXPECT_GE(DriverCalls(ended)["remove"].get<int>(), 2);
}

TEST_F(PanelsimCoresTest, ResetJobRunsInTheUsageTaskOncePerDay) {
  const std::string uuid =
      CreateUser({{"name", "r-task"}, {"mode", "daily"}, {"package_days", 30},
                  {"current_usage_GB", 2}, {"start_date", "2030-06-01"}})["uuid"];
  const auto set_usage = [&] {
    SqlExec(absl::StrCat("UPDATE user SET current_usage = 5, last_reset_time = '2030-06-15' "
                         "WHERE uuid = '", uuid, "'"));
  };
  set_usage();
  // Earlier runs today checked already; a day later the task's run resets ...
  ASSERT_EQ(Control("POST", "/_sim/clock", json{{"today", "2030-06-16"}}.dump()).status, 200);
  UsageTask();
  EXPECT_EQ(CurrentUsage(uuid), 0);
  EXPECT_EQ(UserColumn(uuid, "last_reset_time"), "2030-06-16");
  // ... the next run within 6 h does not check again ...
  set_usage();
  UsageTask();
  EXPECT_EQ(CurrentUsage(uuid), 5);
  // ... and the first run of the next day does.
  ASSERT_EQ(Control("POST", "/_sim/clock", json{{"today", "2030-06-17"}}.dump()).status, 200);
  UsageTask();
  EXPECT_EQ(CurrentUsage(uuid), 0);
}

TEST_F(PanelsimCoresTest, ApplyRunRendersTheReadAtItsStartAndRefusesASecondRun) {
  const std::string first = CreateUser({{"name", "apply-first"}})["uuid"];
  const int64_t runs_before = Counters()["apply_runs"];
  int first_exit = -1;
  std::thread run([&] { first_exit = Ctl("apply_users --no-gui"); });
  absl::SleepFor(absl::Milliseconds(500));
  const std::string late = CreateUser({{"name", "apply-late"}})["uuid"];
  EXPECT_EQ(Ctl("apply_users --no-gui"), 12) << "a run is active";
  run.join();
  EXPECT_EQ(first_exit, 0);
  json cores = Cores();
  EXPECT_TRUE(In(cores, "singbox", first));
  EXPECT_TRUE(In(cores, "wireguard", first));
  EXPECT_FALSE(In(cores, "singbox", late)) << "created after the run read the database";
  EXPECT_TRUE(In(cores, "xray", late)) << "xray is the API's, not the run's";
  json counters = Counters();
  EXPECT_EQ(counters["apply_runs"].get<int64_t>(), runs_before + 1);
  EXPECT_EQ(counters["apply_busy"].get<int64_t>(), 1);
  EXPECT_EQ(counters["full_installs"].get<int64_t>(), 0);
  EXPECT_GE(counters["singbox_restarts"].get<int64_t>(), 1);

  // A blocked user stays in xray after a run (the run leaves xray alone).
  SqlExec(absl::StrCat("UPDATE user SET enable = 0 WHERE uuid = '", first, "'"));
  EXPECT_EQ(Ctl("apply_users --no-gui"), 0);
  cores = Cores();
  EXPECT_TRUE(In(cores, "singbox", late));
  EXPECT_FALSE(In(cores, "singbox", first));
  EXPECT_TRUE(In(cores, "xray", first));

  // The wrong argument order is a full install (which restarts xray too).
  EXPECT_EQ(Ctl("--no-gui apply_users"), 0);
  counters = Counters();
  EXPECT_EQ(counters["full_installs"].get<int64_t>(), 1);
  EXPECT_FALSE(In(Cores(), "xray", first));
}

TEST_F(PanelsimCoresTest, PanelsimCtlFailsClearlyWithoutPanelsim) {
  const std::string command = absl::StrCat(BuiltBinary("panelsim-ctl"),
                                           " --port 1 apply_users --no-gui 2>/dev/null");
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(Control("POST", "/_sim/apply_users", R"({"args":"apply_users"})").status, 400);
}

TEST_F(PanelsimCoresTest, GeneratedTrafficFlowsOnlyThroughCoreMembers) {
  StartPanelsim({"--traffic-interval-ms", "30", "--traffic-users-per-tick", "10",
                 "--usage-task-interval-ms", "100", "--apply-duration-ms", "50"});
  ASSERT_EQ(Control("POST", "/_sim/traffic", R"({"enabled":false})").status, 200);
  const std::string member = CreateUser({{"name", "gen-member"}})["uuid"];
  const std::string blocked = CreateUser({{"name", "gen-blocked"}})["uuid"];
  ASSERT_EQ(PatchUser(blocked, {{"enable", false}}).status, 200);
  const std::string by_sql = InsertBySql("gen-sql");
  ASSERT_EQ(Control("POST", "/_sim/traffic", R"({"enabled":true})").status, 200);
  ASSERT_TRUE(WaitFor(
      [&] { return ParseJson(Control("GET", "/_sim/traffic").body)["total_bytes"] > 0; },
      absl::Seconds(10)));
  // Pausing moves what the cores carried into the table.
  json traffic = ParseJson(Control("POST", "/_sim/traffic", R"({"enabled":false})").body);
  EXPECT_EQ(CurrentUsage(member), traffic["per_user"].value(member, int64_t{0}));
  EXPECT_GT(CurrentUsage(member), 0);
  EXPECT_EQ(traffic["per_user"].value(blocked, int64_t{0}), 0);
  EXPECT_EQ(traffic["per_user"].value(by_sql, int64_t{0}), 0);
  EXPECT_EQ(CurrentUsage(by_sql), 0);
  // After an apply run the SQL user is in sing-box and carries sing-box traffic.
  EXPECT_EQ(Ctl("apply_users --no-gui"), 0);
  ASSERT_EQ(Control("POST", "/_sim/traffic", R"({"enabled":true})").status, 200);
  ASSERT_TRUE(WaitFor(
      [&] {
        return ParseJson(Control("GET", "/_sim/traffic").body)["per_user"].value(by_sql, 0) > 0;
      },
      absl::Seconds(10)));
  traffic = ParseJson(Control("POST", "/_sim/traffic", R"({"enabled":false})").body);
  EXPECT_EQ(CurrentUsage(by_sql), traffic["per_user"].value(by_sql, int64_t{0}));
  EXPECT_EQ(traffic["per_user"].value(blocked, int64_t{0}), 0);
}

}  // namespace
}  // namespace hsync::testing
