// Conformance of panelsim's sessions with PANEL.md §1 ("A successful call also
// sets a session cookie"): the panel keeps a server-side session (Flask-Session
// in Redis) for every logged-in request; a client that sends the cookie back
// reuses its session, any other call creates a new one. panelsim counts the
// sessions it created in /_sim/counters ("sessions_created").
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/panelsim/conformance_support.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

// Flask-Session's cookie: a 43-character url-safe id, a 10-day expiry, HttpOnly, Path=/.
const std::regex kSessionCookie(
    "session=([A-Za-z0-9_-]{43}); Expires=([A-Z][a-z]{2}, \\d\\d [A-Z][a-z]{2} \\d{4} "
    "\\d\\d:\\d\\d:\\d\\d GMT); HttpOnly; Path=/");

class PanelsimSessionTest : public PanelsimConformanceTest {
 protected:
  static void SetUpTestSuite() { StartPanelsim(); }
  void SetUp() override { ASSERT_EQ(Control("DELETE", "/_sim/counters").status, 200); }

  static int64_t SessionsCreated() {
    return ParseJson(Control("GET", "/_sim/counters").body).value("sessions_created", int64_t{-1});
  }

  // GET `path` (absolute) with the owner's key unless `key` says otherwise
  // ("" = no key header) and `cookie` as the Cookie header if non-empty.
  static HttpResponse Get(const std::string& path, const std::string& cookie = "",
                          std::optional<std::string> key = std::nullopt,
                          const std::string& user_agent = "hiddify-sync-test/1") {
    std::vector<std::string> headers = {"Accept: application/json",
                                        absl::StrCat("User-Agent: ", user_agent)};
    const std::string api_key = key.value_or(panel().api_key());
    if (!api_key.empty()) headers.push_back(absl::StrCat("Hiddify-API-Key: ", api_key));
    if (!cookie.empty()) headers.push_back(absl::StrCat("Cookie: ", cookie));
    absl::StatusOr<HttpResponse> r = Raw("GET", path, "", headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse{};
  }

  // The session id of the response's Set-Cookie ("" if none or not the panel's shape).
  static std::string SessionId(const HttpResponse& r) {
    auto it = r.headers.find("set-cookie");
    if (it == r.headers.end()) return "";
    std::smatch m;
    if (!std::regex_match(it->second, m, kSessionCookie)) return "";
    return m[1];
  }
};

constexpr char kPing[] = "/proxy/api/v2/panel/ping/";

TEST_F(PanelsimSessionTest, EveryLoggedInAnswerSetsTheSessionCookie) {
  const HttpResponse ok = Get(kPing);
  EXPECT_EQ(ok.status, 200);
  ASSERT_NE(SessionId(ok), "") << ok.headers.count("set-cookie");
  // Expires: 10 days (the panel's PERMANENT_SESSION_LIFETIME) from now.
  std::smatch m;
  const std::string set_cookie = ok.headers.at("set-cookie");
  ASSERT_TRUE(std::regex_match(set_cookie, m, kSessionCookie)) << set_cookie;
  absl::Time expires;
  std::string error;
  ASSERT_TRUE(absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", m[2].str(), &expires, &error)) << error;
  EXPECT_GT(expires, absl::Now() + absl::Hours(24 * 10) - absl::Hours(1));
  EXPECT_LT(expires, absl::Now() + absl::Hours(24 * 10) + absl::Hours(1));
  // Error answers after the login carry it too: 404, a routing 500, a 308.
  const HttpResponse missing = Get(absl::StrCat("/proxy/api/v2/admin/user/", NewUuid(), "/"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(SessionId(missing), "");
  const HttpResponse no_route = Get("/proxy/api/v2/nothing/here/");
  EXPECT_EQ(no_route.status, 500);
  EXPECT_NE(SessionId(no_route), "");
  const HttpResponse redirect = Get("/proxy/api/v2/panel/ping");
  EXPECT_EQ(redirect.status, 308);
  EXPECT_NE(SessionId(redirect), "");
  EXPECT_EQ(SessionsCreated(), 4);
}

TEST_F(PanelsimSessionTest, AnswersBeforeOrWithoutALoginSetNoCookie) {
  const HttpResponse no_key = Get(kPing, "", "");
  EXPECT_EQ(no_key.status, 403);
  EXPECT_EQ(no_key.headers.count("set-cookie"), 0u);
  const HttpResponse wrong_key = Get(kPing, "", NewUuid());
  EXPECT_EQ(wrong_key.status, 403);
  EXPECT_EQ(wrong_key.headers.count("set-cookie"), 0u);
  const HttpResponse bot = Get(kPing, "", std::nullopt, "Python-urllib/3.12");
  EXPECT_EQ(bot.status, 400);
  EXPECT_EQ(bot.headers.count("set-cookie"), 0u);
  const HttpResponse wrong_path = Get("/nope/api/v2/panel/ping/");
  EXPECT_EQ(wrong_path.status, 400);
  EXPECT_EQ(wrong_path.headers.count("set-cookie"), 0u);
  EXPECT_EQ(SessionsCreated(), 0);
}

TEST_F(PanelsimSessionTest, EveryCallWithoutTheCookieCreatesANewSession) {
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.insert(SessionId(Get(kPing)));
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids.count(""), 0u);
  EXPECT_EQ(SessionsCreated(), 5);
}

TEST_F(PanelsimSessionTest, SendingTheCookieBackReusesTheSession) {
  const std::string sid = SessionId(Get(kPing));
  ASSERT_NE(sid, "");
  const std::string cookie = absl::StrCat("session=", sid);
  for (const std::string& path : {std::string(kPing), std::string("/proxy/api/v2/panel/info/"),
                                 std::string("/proxy/api/v2/admin/user/")}) {
    const HttpResponse r = Get(path, cookie);
    EXPECT_EQ(SessionId(r), sid) << path;
  }
  // Other cookies around it do not matter.
  EXPECT_EQ(SessionId(Get(kPing, absl::StrCat("theme=dark; ", cookie, "; x=1"))), sid);
  EXPECT_EQ(SessionsCreated(), 1);
}

TEST_F(PanelsimSessionTest, AnUnknownSessionCookieGetsANewSession) {
  const std::string unknown(43, 'A');
  const std::string sid = SessionId(Get(kPing, absl::StrCat("session=", unknown)));
  EXPECT_NE(sid, "");
  EXPECT_NE(sid, unknown);
  EXPECT_EQ(SessionsCreated(), 1);
}

TEST_F(PanelsimSessionTest, TheSessionCookieAloneLogsTheAdminIn) {
  const std::string sid = SessionId(Get(kPing));
  ASSERT_NE(sid, "");
  const HttpResponse r = Get(kPing, absl::StrCat("session=", sid), "");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(SessionId(r), sid);
  EXPECT_EQ(Get(kPing, absl::StrCat("session=", std::string(43, 'B')), "").status, 403);
  EXPECT_EQ(SessionsCreated(), 1);
}

TEST_F(PanelsimSessionTest, AWrongKeyLogsTheSessionOut) {
  const std::string sid = SessionId(Get(kPing));
  ASSERT_NE(sid, "");
  const std::string cookie = absl::StrCat("session=", sid);
  const HttpResponse refused = Get(kPing, cookie, NewUuid());
  EXPECT_EQ(refused.status, 403);
  ASSERT_EQ(refused.headers.count("set-cookie"), 1u);
  EXPECT_EQ(refused.headers.at("set-cookie"),
            "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/");
  // The session is gone: the cookie alone no longer logs in.
  EXPECT_EQ(Get(kPing, cookie, "").status, 403);
}

}  // namespace
}  // namespace hsync::testing
