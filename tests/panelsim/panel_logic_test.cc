// Unit tests of panelsim's pure logic: routing, bot detection, body
// validation, stored bytes, is_active and the periodic-reset rule.
#include <gtest/gtest.h>

#include "tests/panelsim/bot_detector.h"
#include "tests/panelsim/panel_routes.h"
#include "tests/panelsim/reset_job.h"
#include "tests/panelsim/user_activity.h"
#include "tests/panelsim/user_input.h"
#include "tests/panelsim/user_service.h"

namespace hsync::panelsim {
namespace {

using Kind = RouteMatch::Kind;

TEST(PanelRoutesTest, MatchesRedirectsAndRefuses) {
  EXPECT_EQ(MatchPanelRoute("p", "GET", "/p/api/v2/admin/user/").name, "list_users");
  EXPECT_EQ(MatchPanelRoute("p", "POST", "/p/api/v2/admin/user/").name, "create_user");
  EXPECT_EQ(MatchPanelRoute("p", "HEAD", "/p/api/v2/panel/info/").name, "info");
  const RouteMatch user =
      MatchPanelRoute("p", "PATCH", "/p/api/v2/admin/user/AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE/");
  EXPECT_EQ(user.kind, Kind::kRoute);
  EXPECT_EQ(user.name, "patch_user");
  EXPECT_EQ(user.uuid, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
  EXPECT_EQ(MatchPanelRoute("p", "GET", "/p/api/v2/admin/user").kind, Kind::kRedirect);
  EXPECT_EQ(MatchPanelRoute("p", "PUT", "/p/api/v2/admin/user/").kind, Kind::kMethodNotAllowed);
  EXPECT_EQ(MatchPanelRoute("p", "PUT", "/p/api/v2/panel/ping/").name, "ping");
  EXPECT_EQ(MatchPanelRoute("p", "GET", "/p/api/v2/admin/user/1234/").kind, Kind::kNotFound);
  EXPECT_EQ(MatchPanelRoute("p", "GET", "/p/api/v2/admin/user//").kind, Kind::kNotFound);
  EXPECT_EQ(MatchPanelRoute("p", "GET", "/px/api/v2/admin/user/").kind, Kind::kNotFound);
  EXPECT_EQ(MatchPanelRoute("p", "OPTIONS", "/p/api/v2/admin/user/").kind, Kind::kRoute);
}

TEST(BotDetectorTest, ClassifiesLikeThePanel) {
  for (const char* bot : {"Python-urllib/3.11", "Java/1.8.0_151", "Googlebot/2.1", "bingbot",
                          "Mozilla/5.0 (compatible; AhrefsBot/7.0)", "Scrapy/2.11"}) {
    EXPECT_TRUE(IsBotUserAgent(bot)) << bot;
  }
  for (const char* ok : {"", "curl/8.5.0", "Go-http-client/1.1", "python-requests/2.31.0",
                         "hiddify-sync/0.1.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                         "JavaScript-client/1"}) {
    EXPECT_FALSE(IsBotUserAgent(ok)) << ok;
  }
}

TEST(PanelStoredBytesTest, RoundsAndClamps) {
  EXPECT_EQ(PanelStoredBytes(1.0), int64_t{1} << 30);
  EXPECT_EQ(PanelStoredBytes(9.313225746154785e-10), 1);
  EXPECT_EQ(PanelStoredBytes(0.5 / (1 << 30)), 1);    // half rounds away from zero
  EXPECT_EQ(PanelStoredBytes(-0.5 / (1 << 30)), -1);
  EXPECT_EQ(PanelStoredBytes(2e6), int64_t{1'000'000} << 30);
  EXPECT_EQ(PanelStoredBytes(-1e300), std::nullopt);
}

UserRecord User(int64_t limit, int64_t usage, int64_t days, std::optional<absl::CivilDay> start,
                bool enable = true) {
  UserRecord u;
  u.usage_limit = limit;
  u.current_usage = usage;
  u.package_days = days;
  u.start_date = start;
  u.enable = enable;
  return u;
}

TEST(UserActivityTest, IsActiveFollowsThePanelsRule) {
  const absl::CivilDay today(2030, 6, 15);
  EXPECT_TRUE(IsActive(User(10, 10, 1, std::nullopt), today));
  EXPECT_FALSE(IsActive(User(10, 11, 1, std::nullopt), today));
  EXPECT_FALSE(IsActive(User(10, 0, 1, std::nullopt, false), today));
  EXPECT_TRUE(IsActive(User(10, 0, 5, absl::CivilDay(2030, 6, 10)), today));
  EXPECT_FALSE(IsActive(User(10, 0, 4, absl::CivilDay(2030, 6, 10)), today));
  EXPECT_TRUE(IsActive(User(10, 0, 0, absl::CivilDay(2031, 1, 1)), today));
  EXPECT_FALSE(IsActive(User(10, 0, -1, std::nullopt), today));
  EXPECT_EQ(RemainingDays(User(0, 0, 50000, std::nullopt), today), 10000);
}

TEST(UserActivityTest, PeriodicResetRule) {
  const absl::CivilDay start(2030, 6, 1);
  UserRecord u = User(10, 5, 100, start);
  u.mode = "weekly";
  u.last_reset_time = start;
  EXPECT_FALSE(PeriodicResetDue(u, absl::CivilDay(2030, 6, 7)));
  EXPECT_TRUE(PeriodicResetDue(u, absl::CivilDay(2030, 6, 8)));
  u.last_reset_time = absl::CivilDay(2030, 6, 8);
  EXPECT_FALSE(PeriodicResetDue(u, absl::CivilDay(2030, 6, 8)));  // not twice a day
  u.last_reset_time.reset();
  EXPECT_TRUE(PeriodicResetDue(u, absl::CivilDay(2030, 6, 9)));   // never reset: now
  u.mode = "no_reset";
  EXPECT_FALSE(PeriodicResetDue(u, absl::CivilDay(2030, 6, 9)));
  u.mode = "daily";
  EXPECT_FALSE(PeriodicResetDue(u, absl::CivilDay(2030, 9, 10)));  // package over
  u.start_date.reset();
  EXPECT_FALSE(PeriodicResetDue(u, absl::CivilDay(2030, 6, 9)));
}

TEST(ResetJobTest, RunsAtMostEvery6HoursAndAfter5AtMostOncePerDay) {
  const absl::CivilSecond day(2030, 6, 15, 0, 10, 0);
  EXPECT_TRUE(ResetJob::Due(std::nullopt, day)) << "never checked";
  // Within 6 h: never.
  EXPECT_FALSE(ResetJob::Due(day, day + 5 * 3600));
  // 6 h later, up to 05:59 local: yes (the first run after midnight catches up).
  EXPECT_TRUE(ResetJob::Due(absl::CivilSecond(2030, 6, 14, 23, 0, 0),
                            absl::CivilSecond(2030, 6, 15, 5, 0, 0)));
  // After 05:00 (hour > 5) only 24 h after the last check.
  EXPECT_FALSE(ResetJob::Due(day, day + 7 * 3600));
  EXPECT_FALSE(ResetJob::Due(day, day + 23 * 3600));
  EXPECT_TRUE(ResetJob::Due(day, day + 24 * 3600));
  // Checked at 07:00: the next day at 01:00 (18 h, before 06:00) it is due;
  // at 06:59 (hour > 5, under 24 h) not; at 07:00 again.
  const absl::CivilSecond seven(2030, 6, 15, 7, 0, 0);
  EXPECT_TRUE(ResetJob::Due(seven, absl::CivilSecond(2030, 6, 16, 1, 0, 0)));
  EXPECT_FALSE(ResetJob::Due(seven, absl::CivilSecond(2030, 6, 16, 6, 59, 0)));
  EXPECT_TRUE(ResetJob::Due(seven, absl::CivilSecond(2030, 6, 16, 7, 0, 0)));
}

TEST(UserInputTest, NullsAndFormats) {
  auto parsed = ParseUserBody(
      R"({"name":null,"start_date":null,"last_online":"2030-01-02 03:04:05","current_usage_GB":"2"})",
      true, UserBodyKind::kPatch);
  ASSERT_TRUE(std::holds_alternative<UserInput>(parsed));
  const UserInput& in = std::get<UserInput>(parsed);
  EXPECT_FALSE(in.name.has_value());
  EXPECT_TRUE(in.start_date_given);
  EXPECT_FALSE(in.start_date.has_value());
  EXPECT_TRUE(in.last_online_valid);
  EXPECT_EQ(in.current_usage_gb, 2.0);

  parsed = ParseUserBody(R"({"last_online":"2030-01-02T03:04:05Z"})", true, UserBodyKind::kPatch);
  ASSERT_TRUE(std::holds_alternative<UserInput>(parsed));
  EXPECT_FALSE(std::get<UserInput>(parsed).last_online_valid);

  parsed = ParseUserBody(R"({"name":"x"})", false, UserBodyKind::kCreate);  // not JSON: {}
  ASSERT_TRUE(std::holds_alternative<ApiError>(parsed));
  EXPECT_EQ(std::get<ApiError>(parsed).status, 422);

  parsed = ParseUserBody("{broken", true, UserBodyKind::kPatch);
  ASSERT_TRUE(std::holds_alternative<ApiError>(parsed));
  EXPECT_EQ(std::get<ApiError>(parsed).status, 500);
  EXPECT_EQ(std::get<ApiError>(parsed).kind, ApiError::Kind::kException);

  parsed = ParseUserBody(R"({"enable":null,"is_active":null,"id":null})", true,
                         UserBodyKind::kPatch);
  ASSERT_TRUE(std::holds_alternative<ApiError>(parsed));
  EXPECT_EQ(std::get<ApiError>(parsed).status, 422);
  EXPECT_EQ(std::get<ApiError>(parsed).detail["json"]["enable"][0], "Field may not be null.");
}

}  // namespace
}  // namespace hsync::panelsim
