// Conformance of panelsim's user objects and write semantics with PANEL.md §1
// ("The user object", "Writing: POST and PATCH semantics").
#include <regex>

#include "absl/strings/str_cat.h"
#include "common/units.h"
#include "tests/panelsim/conformance_support.h"

namespace hsync::testing {
namespace {

using nlohmann::json;

// The literal JSON text of top-level key `key` in `body` (numbers, literals, strings).
std::string RawValue(const std::string& body, const std::string& key) {
  const std::string needle = absl::StrCat("\"", key, "\":");
  const size_t start = body.find(needle);
  if (start == std::string::npos) return "<missing>";
  size_t pos = start + needle.size();
  size_t end = pos;
  if (body[pos] == '"') {
    end = body.find('"', pos + 1) + 1;
  } else {
    while (end < body.size() && body[end] != ',' && body[end] != '}') ++end;
  }
  return body.substr(pos, end - pos);
}

class PanelsimUserTest : public PanelsimConformanceTest {
 protected:
  static void SetUpTestSuite() { StartPanelsim(); }

  std::string UserPath(const std::string& uuid) { return absl::StrCat("admin/user/", uuid, "/"); }
};

TEST_F(PanelsimUserTest, UserObjectHasExactly21SortedKeysCompact) {
  const HttpResponse r = Api("POST", "admin/user/", R"({"name":"shape"})");
  ASSERT_EQ(r.status, 200) << r.body;
  // Compact: no space after separators anywhere outside strings in this object.
  EXPECT_EQ(r.body.find("\": "), std::string::npos);
  EXPECT_EQ(r.body.find(", \""), std::string::npos);
  const json user = ParseJson(r.body);
  std::vector<std::string> keys;
  for (auto it = user.begin(); it != user.end(); ++it) keys.push_back(it.key());
  const std::vector<std::string> expected = {
      "added_by_uuid", "comment", "current_usage_GB", "ed25519_private_key", "ed25519_public_key",
      "enable", "id", "is_active", "lang", "last_online", "last_reset_time", "mode", "name",
      "package_days", "start_date", "telegram_id", "usage_limit_GB", "uuid", "wg_pk", "wg_psk",
      "wg_pub"};
  EXPECT_EQ(keys, expected);
  // The text itself lists them in that order.
  size_t last = 0;
  for (const std::string& key : expected) {
    const size_t at = r.body.find(absl::StrCat("\"", key, "\":"));
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_GE(at, last) << key;
    last = at;
  }
}

TEST_F(PanelsimUserTest, NewUserHasThePanelsDefaultsAndFormats) {
  const HttpResponse r = Api("POST", "admin/user/", R"({"name":"defaults"})");
  ASSERT_EQ(r.status, 200);
  const json u = ParseJson(r.body);
  EXPECT_EQ(RawValue(r.body, "usage_limit_GB"), "1000.0");
  EXPECT_EQ(RawValue(r.body, "current_usage_GB"), "0.0");
  EXPECT_EQ(u["package_days"], 90);
  EXPECT_EQ(u["mode"], "no_reset");
  EXPECT_EQ(u["start_date"], nullptr);
  EXPECT_EQ(u["last_online"], "0001-01-01 00:00:00");
  EXPECT_EQ(u["last_reset_time"], absl::StrCat(kConformanceToday, " 00:00:00"));
  EXPECT_EQ(u["enable"], true);
  EXPECT_EQ(u["is_active"], true);
  EXPECT_EQ(u["lang"], "en");
  EXPECT_EQ(u["comment"], "");
  EXPECT_EQ(u["telegram_id"], nullptr);
  EXPECT_EQ(u["added_by_uuid"], panel().api_key());
  EXPECT_TRUE(u["id"].is_number_integer());
  // Generated keys in the panel's shapes.
  const std::string priv = u["ed25519_private_key"];
  EXPECT_EQ(priv.rfind("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0), 0u);
  EXPECT_NE(priv.find("\n-----END OPENSSH PRIVATE KEY-----\n"), std::string::npos);
  EXPECT_EQ(u["ed25519_public_key"].get<std::string>().rfind("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", 0),
            0u);
  const std::regex wg_key("[A-Za-z0-9+/]{43}=");
  for (const char* k : {"wg_pk", "wg_pub", "wg_psk"}) {
    EXPECT_TRUE(std::regex_match(u[k].get<std::string>(), wg_key)) << k << " " << u[k];
  }
  // Row in the database with every NOT NULL column filled as the panel does.
  EXPECT_EQ(UserColumn(u["uuid"], "max_ips"), "100");
  EXPECT_EQ(UserColumn(u["uuid"], "usage_limit"), "1073741824000");
}

TEST_F(PanelsimUserTest, PostWithOnlyNameStoresAndAnswersAnEmptyComment) {
  // The model's default is '' (the column's SQL default is NULL).
  const HttpResponse r = Api("POST", "admin/user/", R"({"name":"no-comment"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("comment":"")"), std::string::npos) << r.body;
  const std::string uuid = ParseJson(r.body)["uuid"];
  EXPECT_EQ(UserColumn(uuid, "comment"), "");
  EXPECT_EQ(GetUser(uuid)["comment"], "");
  // A row whose comment is NULL (written by SQL) still answers null.
  SqlExec(absl::StrCat("UPDATE user SET comment = NULL WHERE uuid = '", uuid, "'"));
  EXPECT_EQ(GetUser(uuid)["comment"], nullptr);
}

TEST_F(PanelsimUserTest, LangFallsBackToPanelDefaultWhenNull) {
  const json u = CreateUser({{"name", "lang"}, {"lang", "fa"}});
  EXPECT_EQ(u["lang"], "fa");
  SqlExec(absl::StrCat("UPDATE user SET lang = NULL WHERE uuid = '", u["uuid"].get<std::string>(), "'"));
  EXPECT_EQ(GetUser(u["uuid"])["lang"], "en");
}

TEST_F(PanelsimUserTest, DatesAreInThePanelsFormats) {
  const json u = CreateUser({{"name", "dates"},
                             {"package_days", 30},
                             {"start_date", "2030-06-01"},
                             {"last_online", "2030-06-14 13:45:09"}});
  EXPECT_EQ(u["start_date"], "2030-06-01");
  EXPECT_EQ(u["last_online"], "2030-06-14 13:45:09");
  SqlExec(absl::StrCat("UPDATE user SET last_reset_time = '2030-06-02' WHERE uuid = '",
                       u["uuid"].get<std::string>(), "'"));
  EXPECT_EQ(GetUser(u["uuid"])["last_reset_time"], "2030-06-02 00:00:00");
  SqlExec(absl::StrCat("UPDATE user SET last_reset_time = NULL WHERE uuid = '",
                       u["uuid"].get<std::string>(), "'"));
  EXPECT_EQ(GetUser(u["uuid"])["last_reset_time"], nullptr);
}

TEST_F(PanelsimUserTest, ExactByteRoundTrip) {
  const json u = CreateUser({{"name", "bytes"}});
  const std::string uuid = u["uuid"];
  for (uint64_t bytes : {uint64_t{1}, uint64_t{1} << 20, uint64_t{5} << 30, uint64_t{123456789},
                         uint64_t{1'000'000'000'000'000}, kPanelMaxBytes}) {
    const std::string gib = BytesToPanelGiB(bytes);
    HttpResponse r = Api("PATCH", UserPath(uuid),
                         absl::StrCat(R"({"current_usage_GB":)", gib, R"(,"usage_limit_GB":)", gib,
                                      "}"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(UserColumn(uuid, "current_usage"), absl::StrCat(bytes)) << gib;
    EXPECT_EQ(UserColumn(uuid, "usage_limit"), absl::StrCat(bytes)) << gib;
    EXPECT_EQ(RawValue(r.body, "current_usage_GB"), gib);
    r = Api("GET", UserPath(uuid));
    EXPECT_EQ(RawValue(r.body, "current_usage_GB"), gib);
    EXPECT_EQ(RawValue(r.body, "usage_limit_GB"), gib);
  }
  EXPECT_EQ(BytesToPanelGiB(1), "9.313225746154785e-10");
}

TEST_F(PanelsimUserTest, ValuesAboveTheCapAreClamped) {
  const json u = CreateUser({{"name", "cap"}});
  const std::string uuid = u["uuid"];
  const HttpResponse r =
      Api("PATCH", UserPath(uuid), R"({"current_usage_GB":2000000,"usage_limit_GB":1e300})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(UserColumn(uuid, "current_usage"), "1073741824000000");
  EXPECT_EQ(UserColumn(uuid, "usage_limit"), "1073741824000000");
  EXPECT_EQ(RawValue(r.body, "current_usage_GB"), "1000000.0");
}

TEST_F(PanelsimUserTest, NullLeavesEveryFieldUnchanged) {
  const json u = CreateUser({{"name", "nulls"},
                             {"usage_limit_GB", 12.5},
                             {"current_usage_GB", 3},
                             {"package_days", 40},
                             {"start_date", "2030-06-01"},
                             {"mode", "monthly"},
                             {"comment", "c"},
                             {"telegram_id", 42},
                             {"lang", "ru"},
                             {"enable", false}});
  const std::string uuid = u["uuid"];
  json nulls = json::object();
  for (const char* k : {"name", "usage_limit_GB", "current_usage_GB", "package_days", "mode",
                        "last_online", "comment", "telegram_id", "lang", "uuid",
                        "added_by_uuid", "ed25519_private_key", "ed25519_public_key", "wg_pk",
                        "wg_pub", "wg_psk", "last_reset_time"}) {
    // (enable, is_active and id refuse null: NullEnableIsActiveOrIdIs422AndChangesNothing.)
    nulls[k] = nullptr;
  }
  const HttpResponse r = PatchUser(uuid, nulls);
  ASSERT_EQ(r.status, 200) << r.body;
  json after = ParseJson(r.body);
  EXPECT_EQ(after, u);
  EXPECT_EQ(GetUser(uuid), u);
}

TEST_F(PanelsimUserTest, UsageIsAbsoluteAndNumericStringsAreAccepted) {
  const json u = CreateUser({{"name", "absolute"}, {"current_usage_GB", 2}});
  const std::string uuid = u["uuid"];
  EXPECT_EQ(CurrentUsage(uuid), int64_t{2} << 30);
  ASSERT_EQ(PatchUser(uuid, {{"current_usage_GB", 1}}).status, 200);
  EXPECT_EQ(CurrentUsage(uuid), int64_t{1} << 30);  // set, not added
  ASSERT_EQ(PatchUser(uuid, {{"current_usage_GB", "0.5"}, {"package_days", "7"}}).status, 200);
  EXPECT_EQ(CurrentUsage(uuid), int64_t{1} << 29);
  EXPECT_EQ(UserColumn(uuid, "package_days"), "7");
  // Negative values are accepted (and stored) like the panel does.
  ASSERT_EQ(PatchUser(uuid, {{"current_usage_GB", -1}}).status, 200);
  EXPECT_EQ(CurrentUsage(uuid), -(int64_t{1} << 30));
}

TEST_F(PanelsimUserTest, NanAndInfinityAre422) {
  const json u = CreateUser({{"name", "nan"}});
  const std::string path = UserPath(u["uuid"]);
  for (const std::string body :
       {R"({"current_usage_GB":NaN})", R"({"usage_limit_GB":Infinity})",
        R"({"usage_limit_GB":-Infinity})", R"({"current_usage_GB":"nan"})",
        R"({"current_usage_GB":"inf"})", R"({"current_usage_GB":1e999})"}) {
    const HttpResponse r = Api("PATCH", path, body);
    EXPECT_EQ(r.status, 422) << body;
    EXPECT_NE(r.body.find("Special numeric values (nan or infinity) are not permitted."),
              std::string::npos)
        << r.body;
  }
  EXPECT_EQ(CurrentUsage(u["uuid"]), 0);
}

TEST_F(PanelsimUserTest, ValidationErrorsNameTheFields) {
  HttpResponse r = Api("POST", "admin/user/", R"({"name":"v","bogus":1,"mode":"disable"})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.body,
            R"({"detail":{"json":{"bogus":["Unknown field."],"mode":["Must be one of: no_reset, monthly, weekly, daily."]}},"message":"Validation error"})");
  r = Api("POST", "admin/user/", R"({"comment":"no name"})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.body,
            R"({"detail":{"json":{"name":["Missing data for required field."]}},"message":"Validation error"})");
  r = Api("POST", "admin/user/", R"({"name":"v","current_usage_GB":"lots","package_days":"x","enable":"maybe","lang":"de","start_date":"15/06/2030"})");
  EXPECT_EQ(r.status, 422);
  const json detail = ParseJson(r.body)["detail"]["json"];
  EXPECT_EQ(detail["current_usage_GB"], json::array({"Not a valid number."}));
  EXPECT_EQ(detail["package_days"], json::array({"Not a valid integer."}));
  EXPECT_EQ(detail["enable"], json::array({"Not a valid boolean."}));
  EXPECT_EQ(detail["lang"], json::array({"Must be one of: en, fa, ru, pt, zh, my."}));
  EXPECT_EQ(detail["start_date"], json::array({"Not a valid date."}));
  // Nothing was created by the failed POSTs.
  EXPECT_TRUE(Sql("SELECT id FROM user WHERE name IN ('v', 'unknown')").rows.empty());
}

TEST_F(PanelsimUserTest, StartDateOnlyTogetherWithPackageDays) {
  const json u = CreateUser({{"name", "start"}});
  const std::string uuid = u["uuid"];
  json after = ParseJson(PatchUser(uuid, {{"start_date", "2030-06-01"}}).body);
  EXPECT_EQ(after["start_date"], nullptr);
  EXPECT_EQ(UserColumn(uuid, "start_date"), std::nullopt);
  after = ParseJson(PatchUser(uuid, {{"start_date", "2030-06-01"}, {"package_days", 30}}).body);
  EXPECT_EQ(after["start_date"], "2030-06-01");
  EXPECT_EQ(after["package_days"], 30);
  // package_days without start_date keeps it; with start_date null it clears.
  after = ParseJson(PatchUser(uuid, {{"package_days", 31}}).body);
  EXPECT_EQ(after["start_date"], "2030-06-01");
  after = ParseJson(PatchUser(uuid, {{"package_days", 31}, {"start_date", nullptr}}).body);
  EXPECT_EQ(after["start_date"], nullptr);
  EXPECT_EQ(UserColumn(uuid, "start_date"), std::nullopt);
}

TEST_F(PanelsimUserTest, UuidInPatchRenamesTheUser) {
  const json u = CreateUser({{"name", "rename"}});
  const std::string fresh = NewUuid();
  const HttpResponse r = PatchUser(u["uuid"], {{"uuid", fresh}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(ParseJson(r.body)["uuid"], fresh);
  EXPECT_EQ(ParseJson(r.body)["id"], u["id"]);
  EXPECT_EQ(Api("GET", UserPath(u["uuid"])).status, 404);
  EXPECT_EQ(GetUser(fresh)["name"], "rename");
}

TEST_F(PanelsimUserTest, IgnoredFieldsAreIgnored) {
  const json u = CreateUser({{"name", "ignored"}});
  const HttpResponse r = PatchUser(u["uuid"], {{"last_reset_time", "2001-01-01 00:00:00"},
                                               {"is_active", false},
                                               {"id", 999999}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ParseJson(r.body), u);
}

TEST_F(PanelsimUserTest, LastOnlineInAnyOtherFormatIs500AndChangesNothing) {
  const json u = CreateUser({{"name", "online"}, {"last_online", "2030-06-14 10:00:00"}});
  const std::string uuid = u["uuid"];
  for (const std::string bad : {"2030-06-14T10:00:00Z", "2030-06-14T10:00:00+00:00",
                                "2030-06-14T10:00:00", "2030-06-14", "yesterday"}) {
    const HttpResponse r = PatchUser(uuid, {{"last_online", bad}, {"current_usage_GB", 7}, {"name", "changed"}});
    EXPECT_EQ(r.status, 500) << bad;
    EXPECT_NE(r.body.find("Incorrect datetime value"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.rfind("{\"msg\":", 0), 0u) << r.body;
  }
  EXPECT_EQ(GetUser(uuid), u);
  EXPECT_EQ(CurrentUsage(uuid), 0);
  const HttpResponse ok = PatchUser(uuid, {{"last_online", "2030-06-15 08:09:10"}});
  EXPECT_EQ(ParseJson(ok.body)["last_online"], "2030-06-15 08:09:10");
}

TEST_F(PanelsimUserTest, PostWithBadLastOnlineLeavesAnUnknownUserBehind) {
  const std::string uuid = NewUuid();
  const HttpResponse r =
      Api("POST", "admin/user/", json{{"name", "two-step"}, {"uuid", uuid}, {"last_online", "2030-06-14T10:00:00Z"}}.dump());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(UserColumn(uuid, "name"), "unknown");
}

TEST_F(PanelsimUserTest, NonCanonicalUuidOnPostIsReplacedByARandomOne) {
  std::string upper = NewUuid();
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (const std::string& given : {upper, std::string("not-a-uuid"), std::string("")}) {
    const json u = CreateUser({{"name", "noncanonical"}, {"uuid", given}});
    EXPECT_NE(u["uuid"], given);
    EXPECT_EQ(u["uuid"].get<std::string>().size(), 36u);
  }
  const std::string lower = NewUuid();
  EXPECT_EQ(CreateUser({{"name", "canonical"}, {"uuid", lower}})["uuid"], lower);
}

TEST_F(PanelsimUserTest, DuplicateUuidIs400TheUserExists) {
  const std::string uuid = NewUuid();
  CreateUser({{"name", "first"}, {"uuid", uuid}});
  const HttpResponse r = Api("POST", "admin/user/", json{{"name", "second"}, {"uuid", uuid}}.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"detail":{},"message":"The user exists"})");
  EXPECT_EQ(GetUser(uuid)["name"], "first");
}

TEST_F(PanelsimUserTest, KeysFromTheBodyOnlyWhenComplete) {
  const json keys = {{"ed25519_private_key", "PRIV"}, {"ed25519_public_key", "ssh-ed25519 PUB"},
                     {"wg_pk", "a"}, {"wg_pub", "b"}, {"wg_psk", "c"}};
  json body = keys;
  body["name"] = "keys";
  json u = CreateUser(body);
  for (auto it = keys.begin(); it != keys.end(); ++it) EXPECT_EQ(u[it.key()], it.value());
  // Incomplete sets are generated instead.
  u = CreateUser({{"name", "half-keys"}, {"ed25519_private_key", "PRIV"}, {"wg_pk", "a"}, {"wg_pub", "b"}});
  EXPECT_NE(u["ed25519_private_key"], "PRIV");
  EXPECT_NE(u["wg_pk"], "a");
  EXPECT_EQ(u["wg_pk"].get<std::string>().size(), 44u);
}

TEST_F(PanelsimUserTest, PatchStoresEachWireGuardKeyItIsGiven) {
  const json u = CreateUser({{"name", "wg-patch"}});
  const std::string uuid = u["uuid"];
  const std::string new_pk = "cGF0Y2hlZCB3aXJlZ3VhcmQgcHJpdmF0ZSBrZXkgISE=";
  HttpResponse r = PatchUser(uuid, {{"wg_pk", new_pk}});
  ASSERT_EQ(r.status, 200) << r.body;
  json after = ParseJson(r.body);
  EXPECT_EQ(after["wg_pk"], new_pk);
  EXPECT_EQ(after["wg_pub"], u["wg_pub"]);
  EXPECT_EQ(after["wg_psk"], u["wg_psk"]);
  EXPECT_EQ(UserColumn(uuid, "wg_pk"), new_pk);
  EXPECT_EQ(UserColumn(uuid, "wg_pub"), u["wg_pub"].get<std::string>());
  // null leaves a key unchanged; an empty string is stored (`is not None`).
  r = PatchUser(uuid, {{"wg_pub", nullptr}, {"wg_psk", ""}});
  ASSERT_EQ(r.status, 200) << r.body;
  after = ParseJson(r.body);
  EXPECT_EQ(after["wg_pub"], u["wg_pub"]);
  EXPECT_EQ(after["wg_psk"], "");
  EXPECT_EQ(UserColumn(uuid, "wg_psk"), "");
  EXPECT_EQ(UserColumn(uuid, "wg_pk"), new_pk);
}

TEST_F(PanelsimUserTest, NullEnableIsActiveOrIdIs422AndChangesNothing) {
  const json u = CreateUser({{"name", "not-null"}, {"enable", true}});
  const std::string uuid = u["uuid"];
  for (const std::string field : {"enable", "is_active", "id"}) {
    const HttpResponse r = PatchUser(uuid, {{field, nullptr}, {"name", "changed"}});
    EXPECT_EQ(r.status, 422) << field;
    EXPECT_EQ(r.body, absl::StrCat(R"({"detail":{"json":{")", field,
                                   R"(":["Field may not be null."]}},"message":"Validation error"})"))
        << field;
  }
  // With an Accept that admits HTML (libcurl's */*), the same error as {"msg": ...}.
  absl::StatusOr<HttpResponse> raw =
      Raw("PATCH", absl::StrCat("/proxy/api/v2/", UserPath(uuid)), R"({"enable":null})",
          {absl::StrCat("Hiddify-API-Key: ", panel().api_key()), "Accept: */*",
           "Content-Type: application/json"});
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->status, 422);
  EXPECT_EQ(raw->body, R"({"msg":"Validation error"})");
  EXPECT_EQ(GetUser(uuid), u);
  EXPECT_EQ(UserColumn(uuid, "enable"), "1");
  // POST alike: nothing is created.
  const HttpResponse post = Api("POST", "admin/user/", R"({"name":"null-enable","enable":null})");
  EXPECT_EQ(post.status, 422);
  EXPECT_EQ(ParseJson(post.body)["detail"]["json"]["enable"],
            json::array({"Field may not be null."}));
  EXPECT_TRUE(Sql("SELECT id FROM user WHERE name = 'null-enable'").rows.empty());
  // id is validated as an integer (then ignored).
  const HttpResponse bad_id = PatchUser(uuid, {{"id", "seven"}});
  EXPECT_EQ(bad_id.status, 422);
  EXPECT_EQ(ParseJson(bad_id.body)["detail"]["json"]["id"], json::array({"Not a valid integer."}));
}

TEST_F(PanelsimUserTest, MalformedJsonBodyIs500WhateverTheAccept) {
  const json u = CreateUser({{"name", "malformed"}});
  const std::string path = absl::StrCat("/proxy/api/v2/", UserPath(u["uuid"]));
  const std::string expected =
      R"({"msg":"400 Bad Request: The browser (or proxy) sent a request that this server could not understand."})";
  for (const std::string accept : {"application/json", "*/*"}) {
    for (const std::string body : {R"({"name":"changed")", "not json", " "}) {
      absl::StatusOr<HttpResponse> r =
          Raw("PATCH", path, body,
              {absl::StrCat("Hiddify-API-Key: ", panel().api_key()),
               absl::StrCat("Accept: ", accept), "Content-Type: application/json"});
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->status, 500) << accept << " " << body;
      EXPECT_EQ(r->body, expected) << accept << " " << body;
    }
  }
  EXPECT_EQ(GetUser(u["uuid"]), u);
  // POST alike, and nothing is created.
  const size_t users_before = Sql("SELECT id FROM user").rows.size();
  const HttpResponse post = Api("POST", "admin/user/", R"({"name":"malformed-post")");
  EXPECT_EQ(post.status, 500);
  EXPECT_EQ(post.body, expected);
  EXPECT_EQ(Sql("SELECT id FROM user").rows.size(), users_before);
  // An empty body is no body: {} (a PATCH that changes nothing).
  const HttpResponse empty = Api("PATCH", UserPath(u["uuid"]), "");
  EXPECT_EQ(empty.status, 200) << empty.body;
}

TEST_F(PanelsimUserTest, UnknownAddedByUuidCreatesAnAgentAdmin) {
  const std::string owner = NewUuid();
  const json u = CreateUser({{"name", "orphan"}, {"added_by_uuid", owner}});
  EXPECT_EQ(u["added_by_uuid"], owner);
  const ResultSet rs = Sql(absl::StrCat("SELECT mode, name FROM admin_user WHERE uuid = '", owner, "'"));
  ASSERT_EQ(rs.rows.size(), 1u);
  EXPECT_EQ(rs.rows[0][0], "agent");
}

TEST_F(PanelsimUserTest, DeleteAnswersOkThen404) {
  const json u = CreateUser({{"name", "delete-me"}});
  HttpResponse r = Api("DELETE", UserPath(u["uuid"]));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"msg":"ok","status":200})");
  r = Api("DELETE", UserPath(u["uuid"]));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"detail":{},"message":"user not found"})");
  r = Api("PATCH", UserPath(u["uuid"]), "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"detail":{},"message":"user not found"})");
  r = Api("GET", UserPath(u["uuid"]));
  EXPECT_EQ(r.body, R"({"detail":{},"message":"User not found"})");
}

TEST_F(PanelsimUserTest, BodyWithoutJsonContentTypeIsReadAsEmpty) {
  const json u = CreateUser({{"name", "content-type"}});
  absl::StatusOr<HttpResponse> r =
      Raw("PATCH", absl::StrCat("/proxy/api/v2/", UserPath(u["uuid"])), R"({"name":"changed"})",
          {absl::StrCat("Hiddify-API-Key: ", panel().api_key()), "Accept: application/json",
           "Content-Type: application/x-www-form-urlencoded"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(ParseJson(r->body)["name"], "content-type");
}

TEST_F(PanelsimUserTest, NonAsciiIsEscapedLikePython) {
  const HttpResponse r = Api("POST", "admin/user/", R"({"name":"café 😀","comment":"a\"b\\c\nd"})");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("name":"caf\u00e9 \ud83d\ude00")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("comment":"a\"b\\c\nd")"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace hsync::testing
