// Conformance of panelsim with PANEL.md §1: routes, trailing-slash redirects,
// request hygiene (bot User-Agent, proxy path), authentication, admin
// visibility, and the error shapes chosen by the Accept header.
#include "absl/strings/str_cat.h"
#include "tests/panelsim/conformance_support.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

class PanelsimHttpTest : public PanelsimConformanceTest {
 protected:
  static void SetUpTestSuite() { StartPanelsim(); }

  std::vector<std::string> OwnerHeaders(const std::string& accept = "application/json") {
    return {absl::StrCat("Hiddify-API-Key: ", panel().api_key()),
            absl::StrCat("Accept: ", accept), "User-Agent: hiddify-sync-test/1"};
  }
};

TEST_F(PanelsimHttpTest, EmptyRosterListIs404NoUser) {
  // Runs first on a fresh database (gtest keeps declaration order).
  const HttpResponse r = Api("GET", "admin/user/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"detail":{},"message":"You have no user"})");
}

TEST_F(PanelsimHttpTest, PingAndInfo) {
  HttpResponse r = Api("GET", "panel/ping/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"msg":"GET: PONG"})");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  r = Api("POST", "panel/ping/");
  EXPECT_EQ(r.body, R"({"msg":"POST: PONG"})");
  r = Api("GET", "panel/info/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"version":"12.3.0"})");
}

TEST_F(PanelsimHttpTest, MissingTrailingSlashRedirects308KeepingQuery) {
  absl::StatusOr<HttpResponse> r =
      Raw("GET", "/proxy/api/v2/admin/user?x=1", "", OwnerHeaders());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 308);
  EXPECT_EQ(r->headers["location"],
            absl::StrCat(panel().root_url(), "/proxy/api/v2/admin/user/?x=1"));
  const std::string uuid = NewUuid();
  r = Raw("PATCH", absl::StrCat("/proxy/api/v2/admin/user/", uuid), "{}", OwnerHeaders());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 308);
  EXPECT_EQ(r->headers["location"],
            absl::StrCat(panel().root_url(), "/proxy/api/v2/admin/user/", uuid, "/"));
  r = Raw("GET", "/proxy/api/v2/panel/ping", "", OwnerHeaders());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 308);
}

TEST_F(PanelsimHttpTest, WrongProxyPathIs400InvalidRequestBeforeAuth) {
  absl::StatusOr<HttpResponse> r = Raw("GET", "/nope/api/v2/admin/user/", "", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, R"({"msg":"invalid request"})");  // libcurl sends Accept: */*
  r = Raw("GET", "/nope/api/v2/admin/user/", "", {"Accept: application/json"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, R"({"detail":{},"message":"invalid request"})");
}

TEST_F(PanelsimHttpTest, BotUserAgentsAre400InvalidBeforeAnything) {
  for (const std::string ua : {"Python-urllib/3.11", "Java/17.0.2", "Googlebot/2.1"}) {
    absl::StatusOr<HttpResponse> r =
        Raw("GET", "/proxy/api/v2/panel/ping/", "",
            {absl::StrCat("User-Agent: ", ua), "Accept: application/json",
             absl::StrCat("Hiddify-API-Key: ", panel().api_key())});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << ua;
    EXPECT_EQ(r->body, R"({"detail":{},"message":"invalid"})") << ua;
  }
  // Even before the proxy path check.
  absl::StatusOr<HttpResponse> r =
      Raw("GET", "/nope/", "", {"User-Agent: Python-urllib/3.11", "Accept: */*"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, R"({"msg":"invalid"})");
}

TEST_F(PanelsimHttpTest, OrdinaryUserAgentsPass) {
  for (const std::string ua :
       {"curl/8.5.0", "Go-http-client/1.1", "python-requests/2.31.0", "hiddify-sync/0.1.0", ""}) {
    absl::StatusOr<HttpResponse> r =
        Raw("GET", "/proxy/api/v2/panel/ping/", "",
            {absl::StrCat("User-Agent: ", ua), absl::StrCat("Hiddify-API-Key: ", panel().api_key())});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << "UA '" << ua << "'";
  }
}

TEST_F(PanelsimHttpTest, MissingOrWrongKeyIs403Unathorized) {
  absl::StatusOr<HttpResponse> r =
      Raw("GET", "/proxy/api/v2/admin/user/", "", {"Accept: application/json"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, R"({"detail":{},"message":"Unathorized"})");
  r = Raw("GET", "/proxy/api/v2/panel/ping/", "",
          {"Accept: application/json", absl::StrCat("Hiddify-API-Key: ", NewUuid())});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, R"({"detail":{},"message":"Unathorized"})");
  r = Raw("GET", "/proxy/api/v2/panel/ping/", "", {"Hiddify-API-Key: not-even-a-uuid"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, R"({"msg":"Unathorized"})");
}

TEST_F(PanelsimHttpTest, UserUuidAsKeyIs403) {
  const json user = CreateUser({{"name", "key-user"}});
  const HttpResponse r = ApiAs(user["uuid"].get<std::string>(), "GET", "admin/user/");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, R"({"detail":{},"message":"Unathorized"})");
}

TEST_F(PanelsimHttpTest, WrongKeyIsRefusedBeforeRouting) {
  // A wrong key wins over the missing slash; without a key the redirect comes first.
  absl::StatusOr<HttpResponse> r = Raw("GET", "/proxy/api/v2/admin/user", "",
                                       {absl::StrCat("Hiddify-API-Key: ", NewUuid())});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  r = Raw("GET", "/proxy/api/v2/admin/user", "", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 308);
}

TEST_F(PanelsimHttpTest, UnknownRouteMalformedUuidAndWrongMethodAre500) {
  const std::string not_found =
      R"({"msg":"404 Not Found: The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."})";
  HttpResponse r = Api("GET", "admin/nothing/");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, not_found);
  r = Api("GET", "admin/user/not-a-uuid/");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, not_found);
  r = Api("PUT", "admin/user/");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"msg":"405 Method Not Allowed: The method is not allowed for the requested URL."})");
  r = Api("POST", absl::StrCat("admin/user/", NewUuid(), "/"), "{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("405 Method Not Allowed"), std::string::npos);
}

TEST_F(PanelsimHttpTest, ErrorShapeFollowsAcceptHeader) {
  const std::string path = absl::StrCat("/proxy/api/v2/admin/user/", NewUuid(), "/");
  const std::string key = absl::StrCat("Hiddify-API-Key: ", panel().api_key());
  // No Accept at all ("Accept:" makes libcurl drop its default).
  absl::StatusOr<HttpResponse> r = Raw("GET", path, "", {key, "Accept:"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, R"({"detail":{},"message":"User not found"})");
  r = Raw("GET", path, "", {key, "Accept: application/json"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, R"({"detail":{},"message":"User not found"})");
  r = Raw("GET", path, "", {key, "Accept: */*"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, R"({"msg":"User not found"})");
  // Validation details are dropped in the */* shape.
  r = Raw("POST", "/proxy/api/v2/admin/user/", R"({"bogus":1})",
          {key, "Accept: */*", "Content-Type: application/json"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 422);
  EXPECT_EQ(r->body, R"({"msg":"Validation error"})");
}

TEST_F(PanelsimHttpTest, AdminsSeeOnlyTheirOwnAndSubAdminsUsers) {
  // Tree: owner(1) -> admin A -> agent B;  owner -> agent C.
  const std::string a = NewUuid(), b = NewUuid(), c = NewUuid();
  SqlExec(absl::StrCat("INSERT INTO admin_user (mode, can_add_admin, max_users, max_active_users, "
                       "parent_admin_id, uuid, name) VALUES ('admin',1,100,100,1,'", a, "','A')"));
  const std::string a_id = Sql(absl::StrCat("SELECT id FROM admin_user WHERE uuid='", a, "'")).rows[0][0].value();
  SqlExec(absl::StrCat("INSERT INTO admin_user (mode, can_add_admin, max_users, max_active_users, "
                       "parent_admin_id, uuid, name) VALUES ('agent',0,100,100,", a_id, ",'", b,
                       "','B'), ('agent',0,100,100,1,'", c, "','C')"));
  // C has no users yet: an empty roster, not a failure.
  HttpResponse r = ApiAs(c, "GET", "admin/user/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"detail":{},"message":"You have no user"})");

  const json by_a = ParseJson(ApiAs(a, "POST", "admin/user/", R"({"name":"of-a"})").body);
  const json by_b = ParseJson(ApiAs(b, "POST", "admin/user/", R"({"name":"of-b"})").body);
  const json by_c = ParseJson(ApiAs(c, "POST", "admin/user/", R"({"name":"of-c"})").body);
  EXPECT_EQ(by_a["added_by_uuid"], a);
  EXPECT_EQ(by_b["added_by_uuid"], b);

  const auto uuids_seen_by = [&](const std::string& key) {
    std::vector<std::string> out;
    for (const json& u : ParseJson(ApiAs(key, "GET", "admin/user/").body)) out.push_back(u["uuid"]);
    return out;
  };
  EXPECT_EQ(uuids_seen_by(a), (std::vector<std::string>{by_a["uuid"], by_b["uuid"]}));
  EXPECT_EQ(uuids_seen_by(b), (std::vector<std::string>{by_b["uuid"]}));
  EXPECT_EQ(uuids_seen_by(c), (std::vector<std::string>{by_c["uuid"]}));
  const std::vector<std::string> all = uuids_seen_by(panel().api_key());
  EXPECT_NE(std::find(all.begin(), all.end(), by_c["uuid"]), all.end());

  const std::string b_path = absl::StrCat("admin/user/", by_b["uuid"].get<std::string>(), "/");
  EXPECT_EQ(ApiAs(a, "GET", b_path).status, 200);  // through the sub-admin
  r = ApiAs(c, "GET", b_path);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, R"({"detail":{},"message":"You don't have permission to access this user"})");
  EXPECT_EQ(ApiAs(b, "PATCH", absl::StrCat("admin/user/", by_a["uuid"].get<std::string>(), "/"),
                  R"({"name":"x"})").status,
            403);
  EXPECT_EQ(ApiAs(c, "DELETE", b_path).status, 403);
  EXPECT_EQ(ApiAs(panel().api_key(), "GET", b_path).status, 200);
}

TEST_F(PanelsimHttpTest, ListIsInIdOrder) {
  for (int i = 0; i < 5; ++i) CreateUser({{"name", absl::StrCat("order-", i)}});
  const json list = ParseJson(Api("GET", "admin/user/").body);
  ASSERT_TRUE(list.is_array());
  for (size_t i = 1; i < list.size(); ++i) {
    EXPECT_LT(list[i - 1]["id"].get<int64_t>(), list[i]["id"].get<int64_t>());
  }
}

TEST_F(PanelsimHttpTest, UpperCaseUuidInPathFindsTheUser) {
  const json user = CreateUser({{"name", "upper"}});
  std::string upper = user["uuid"];
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const HttpResponse r = Api("GET", absl::StrCat("admin/user/", upper, "/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(ParseJson(r.body)["uuid"], user["uuid"]);
}

}  // namespace
}  // namespace hsync::testing
