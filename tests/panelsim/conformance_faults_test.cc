// panelsim's fault injection and counters (tests/panelsim/README.md, control
// API): every fault does what it says, per route, and expires.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/panelsim/conformance_support.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

class PanelsimFaultsTest : public PanelsimConformanceTest {
 protected:
  static void SetUpTestSuite() { StartPanelsim(); }
  void SetUp() override {
    ASSERT_EQ(Control("DELETE", "/_sim/faults").status, 200);
    ASSERT_EQ(Control("DELETE", "/_sim/counters").status, 200);
  }
  void TearDown() override { Control("DELETE", "/_sim/faults"); }

  void AddFault(const json& rule) {
    const HttpResponse r = Control("POST", "/_sim/faults", rule.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  absl::StatusOr<HttpResponse> Ping(absl::Duration timeout = absl::Seconds(10)) {
    return Raw("GET", "/proxy/api/v2/panel/ping/", "",
               {absl::StrCat("Hiddify-API-Key: ", panel().api_key()), "Accept: application/json"},
               timeout);
  }
  json Counters() { return ParseJson(Control("GET", "/_sim/counters").body); }
};

TEST_F(PanelsimFaultsTest, HealthAnswers) {
  const HttpResponse r = Control("GET", "/_sim/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"ok":true})");
}

TEST_F(PanelsimFaultsTest, ErrorRateAnswersTheStatus) {
  for (int status : {500, 502, 503}) {
    AddFault({{"route", "ping"}, {"error_rate", 1.0}, {"error_status", status}, {"remaining", 1}});
    absl::StatusOr<HttpResponse> r = Ping();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, status);
    EXPECT_TRUE(json::accept(r->body)) << r->body;
  }
  absl::StatusOr<HttpResponse> r = Ping();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(PanelsimFaultsTest, RulesApplyOnlyToTheirRoute) {
  AddFault({{"route", "list_users"}, {"error_rate", 1.0}});
  EXPECT_EQ(Ping()->status, 200);
  EXPECT_EQ(Api("GET", "admin/user/").status, 500);
  Control("DELETE", "/_sim/faults");
  AddFault({{"route", "*"}, {"error_rate", 1.0}, {"error_status", 503}});
  EXPECT_EQ(Ping()->status, 503);
  EXPECT_EQ(Api("GET", "admin/user/").status, 503);
}

TEST_F(PanelsimFaultsTest, RemainingExpires) {
  AddFault({{"route", "ping"}, {"error_rate", 1.0}, {"remaining", 2}});
  EXPECT_EQ(Ping()->status, 500);
  EXPECT_EQ(Ping()->status, 500);
  EXPECT_EQ(Ping()->status, 200);
  EXPECT_EQ(Ping()->status, 200);
}

TEST_F(PanelsimFaultsTest, LatencyDelaysTheAnswer) {
  AddFault({{"route", "ping"}, {"latency_ms", 400}, {"remaining", 1}});
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> r = Ping();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(390));
}

TEST_F(PanelsimFaultsTest, TimeoutNeverAnswers) {
  AddFault({{"route", "ping"}, {"timeout_rate", 1.0}, {"remaining", 1}});
  const absl::StatusOr<HttpResponse> r = Ping(absl::Milliseconds(700));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_EQ(Ping()->status, 200);  // expired; the server still serves others
}

TEST_F(PanelsimFaultsTest, ClearingFaultsReleasesHeldTimeouts) {
  AddFault({{"route", "ping"}, {"timeout_rate", 1.0}});
  std::atomic<bool> done{false};
  absl::Time released;
  std::thread held([&] {
    const absl::StatusOr<HttpResponse> r = Ping(absl::Seconds(30));
    EXPECT_FALSE(r.ok());  // dropped, never answered
    released = absl::Now();
    done = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(done);
  const absl::Time cleared = absl::Now();
  Control("DELETE", "/_sim/faults");
  held.join();
  EXPECT_LT(released - cleared, absl::Seconds(2));
}

TEST_F(PanelsimFaultsTest, DropClosesTheConnectionWithoutAnswer) {
  AddFault({{"route", "ping"}, {"drop_rate", 1.0}, {"remaining", 1}});
  const absl::StatusOr<HttpResponse> r = Ping();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(Ping()->status, 200);
}

TEST_F(PanelsimFaultsTest, GarbageIs200WithANonJsonBody) {
  AddFault({{"route", "list_users"}, {"garbage_rate", 1.0}, {"remaining", 1}});
  const HttpResponse r = Api("GET", "admin/user/");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(json::accept(r.body)) << r.body;
}

TEST_F(PanelsimFaultsTest, FaultedRequestsAreNotProcessed) {
  const json u = CreateUser({{"name", "unprocessed"}});
  AddFault({{"route", "patch_user"}, {"error_rate", 1.0}, {"remaining", 1}});
  EXPECT_EQ(PatchUser(u["uuid"], {{"current_usage_GB", 3}}).status, 500);
  EXPECT_EQ(CurrentUsage(u["uuid"]), 0);
}

TEST_F(PanelsimFaultsTest, AfterLatencyAppliesTheChangeBeforeAnswering) {
  const json u = CreateUser({{"name", "after-latency"}});
  const std::string uuid = u["uuid"];
  AddFault({{"route", "patch_user"}, {"after_latency_ms", 1500}, {"remaining", 1}});
  const absl::Time start = absl::Now();
  const absl::StatusOr<HttpResponse> r =
      Raw("PATCH", absl::StrCat("/proxy/api/v2/admin/user/", uuid, "/"), R"({"current_usage_GB":2})",
          {absl::StrCat("Hiddify-API-Key: ", panel().api_key()), "Accept: application/json",
           "Content-Type: application/json"},
          absl::Milliseconds(600));
  // The client gave up before the answer, yet the parent already applied it.
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1400));
  EXPECT_EQ(CurrentUsage(uuid), int64_t{2} << 30);
}

TEST_F(PanelsimFaultsTest, BadRulesAreRefused) {
  EXPECT_EQ(Control("POST", "/_sim/faults", R"({"route":"nope"})").status, 400);
  EXPECT_EQ(Control("POST", "/_sim/faults", R"({"error_rate":2})").status, 400);
  EXPECT_EQ(Control("POST", "/_sim/faults", R"({"surprise":1})").status, 400);
  EXPECT_EQ(Control("POST", "/_sim/faults", "not json").status, 400);
}

TEST_F(PanelsimFaultsTest, CountersCountCallsAndUsagePatches) {
  const json u = CreateUser({{"name", "counted"}});
  const std::string uuid = u["uuid"];
  ASSERT_TRUE(Ping().ok());
  ASSERT_TRUE(Ping().ok());
  Api("GET", "admin/user/");
  GetUser(uuid);
  PatchUser(uuid, {{"current_usage_GB", 1}});   // changes usage
  PatchUser(uuid, {{"current_usage_GB", 1}});   // same value: no usage change
  PatchUser(uuid, {{"comment", "x"}});          // no usage at all
  PatchUser(uuid, {{"current_usage_GB", 1.5}}); // changes usage
  Control("POST", "/_sim/apply_users");
  Api("DELETE", absl::StrCat("admin/user/", uuid, "/"));
  const json c = Counters();
  EXPECT_EQ(c["calls"]["GET ping"], 2);
  EXPECT_EQ(c["calls"]["GET list_users"], 1);
  EXPECT_EQ(c["calls"]["GET get_user"], 1);
  EXPECT_EQ(c["calls"]["PATCH patch_user"], 4);
  EXPECT_EQ(c["calls"]["POST create_user"], 1);
  EXPECT_EQ(c["calls"]["DELETE delete_user"], 1);
  EXPECT_EQ(c["usage_patches"], 2);
  EXPECT_EQ(c["apply_users"], 1);
  EXPECT_EQ(c["traffic_ticks"], 0);
  EXPECT_EQ(c["apply_runs"], 1);  // the apply_users call ran install.sh once
  ASSERT_EQ(Control("DELETE", "/_sim/counters").status, 200);
  const json zeroed = Counters();
  std::vector<std::string> keys;
  for (const auto& [key, value] : zeroed.items()) {
    keys.push_back(key);
    if (key == "calls" || key == "driver_calls") {
      EXPECT_EQ(value, json::object()) << key;
    } else if (key != "usage_task_runs") {  // the usage task keeps running in the background
      EXPECT_EQ(value, 0) << key;
    }
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"apply_busy", "apply_runs", "apply_users", "busy_ms",
                                            "calls", "driver_calls", "full_installs",
                                            "sessions_created", "singbox_restarts",
                                            "traffic_ticks", "usage_patches", "usage_task_runs",
                                            "xray_restarts"}));
}

TEST_F(PanelsimFaultsTest, FaultedCallsAreCountedToo) {
  AddFault({{"route", "ping"}, {"drop_rate", 1.0}, {"remaining", 1}});
  EXPECT_FALSE(Ping().ok());
  EXPECT_EQ(Counters()["calls"]["GET ping"], 1);
}

}  // namespace
}  // namespace hsync::testing
