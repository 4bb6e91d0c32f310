// The panel's user JSON <-> User, and PATCH body text (no network).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/units.h"
#include "hub/parent/panel_user_json.h"
#include "hub/parent/panel_user_list_parser.h"

namespace hsync::hub {
namespace {

using nlohmann::json;
using hiddify_sync::v1::User;

// A user object as the panel prints it (PANEL.md §1), keys sorted.
json PanelUser() {
  return json::parse(R"({
    "added_by_uuid": "11111111-2222-4333-8444-555555555555",
    "comment": "vip",
    "current_usage_GB": 0.0009765625,
    "ed25519_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
    "ed25519_public_key": "ssh-ed25519 AAAAC3",
    "enable": true,
    "id": 7,
    "is_active": true,
    "lang": "en",
    "last_online": "2024-05-01 12:34:56",
    "last_reset_time": "2024-04-01 00:00:00",
    "mode": "monthly",
    "name": "alice",
    "package_days": 30,
    "start_date": "2024-04-15",
    "telegram_id": 123456789012,
    "usage_limit_GB": 1000.0,
    "uuid": "6098ea35-8cb2-4a08-ba15-2be25bc49cb6",
    "wg_pk": "wApk",
    "wg_psk": "wGpsk",
    "wg_pub": "wGpub"
  })");
}

TEST(PanelUserJsonTest, ParsesEveryFieldOfThePanelsUserObject) {
  auto user = ParsePanelUser(PanelUser().dump());
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->uuid(), "6098ea35-8cb2-4a08-ba15-2be25bc49cb6");
  EXPECT_EQ(user->name(), "alice");
  EXPECT_EQ(user->usage_limit_bytes(), 1000 * kBytesPerGiB);
  EXPECT_EQ(user->current_usage_bytes(), 1u << 20);
  EXPECT_EQ(user->package_days(), 30);
  EXPECT_EQ(user->start_date(), "2024-04-15");
  EXPECT_EQ(user->mode(), "monthly");
  EXPECT_EQ(user->last_reset_time(), "2024-04-01 00:00:00");
  EXPECT_EQ(user->last_online(), "2024-05-01 12:34:56");
  EXPECT_TRUE(user->enable());
  EXPECT_TRUE(user->is_active());
  EXPECT_EQ(user->comment(), "vip");
  EXPECT_EQ(user->telegram_id(), 123456789012);
  EXPECT_EQ(user->lang(), "en");
  // The owning admin's uuid is its API key: never part of the parsed user.
  EXPECT_EQ(user->DebugString().find("11111111-2222-4333-8444-555555555555"), std::string::npos);
  EXPECT_EQ(user->ed25519_private_key(),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n");
  EXPECT_EQ(user->ed25519_public_key(), "ssh-ed25519 AAAAC3");
  EXPECT_EQ(user->wg_pk(), "wApk");
  EXPECT_EQ(user->wg_pub(), "wGpub");
  EXPECT_EQ(user->wg_psk(), "wGpsk");
}

TEST(PanelUserJsonTest, NullsWhereThePanelAllowsThem) {
  json j = PanelUser();
  j["start_date"] = nullptr;
  j["last_reset_time"] = nullptr;
  j["telegram_id"] = nullptr;
  j["comment"] = nullptr;
  auto user = ParsePanelUser(j.dump());
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_FALSE(user->has_start_date());
  EXPECT_FALSE(user->has_last_reset_time());
  EXPECT_FALSE(user->has_telegram_id());
  EXPECT_EQ(user->comment(), "");
}

TEST(PanelUserJsonTest, GiBFloatsBecomeExactBytes) {
  for (uint64_t bytes : {uint64_t{0}, uint64_t{1}, uint64_t{1} << 20, 5 * kBytesPerGiB,
                         uint64_t{123456789}, uint64_t{1'000'000'000'000'000}, kPanelMaxBytes}) {
    json j = PanelUser();
    j["current_usage_GB"] = json::parse(BytesToPanelGiB(bytes));
    auto user = ParsePanelUser(j.dump());
    ASSERT_TRUE(user.ok()) << user.status();
    EXPECT_EQ(user->current_usage_bytes(), bytes);
  }
}

TEST(PanelUserJsonTest, EachMissingOrMistypedFieldIsDataLossNamingIt) {
  const std::vector<std::pair<std::string, json>> bad = {
      {"uuid", 5},          {"name", nullptr},       {"usage_limit_GB", "1000.0"},
      {"current_usage_GB", -1.0}, {"package_days", 1.5}, {"start_date", "2024-13-01"},
      {"mode", 3},          {"last_online", "2024-05-01T12:34:56Z"},
      {"last_online", nullptr}, {"enable", 1},        {"is_active", "true"},
      {"telegram_id", "x"}, {"id", "7"},             {"wg_pub", 1}};
  for (const auto& [key, value] : bad) {
    json j = PanelUser();
    j[key] = value;
    auto user = ParsePanelUser(j.dump());
    ASSERT_FALSE(user.ok()) << key << " = " << value.dump();
    EXPECT_EQ(user.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(user.status().message().find(key), std::string::npos) << user.status();
  }
  for (const char* key : {"uuid", "name", "current_usage_GB", "start_date", "is_active", "id",
                          "wg_psk", "last_reset_time", "telegram_id"}) {
    json j = PanelUser();
    j.erase(key);
    auto user = ParsePanelUser(j.dump());
    ASSERT_FALSE(user.ok()) << key;
    EXPECT_EQ(user.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(user.status().message().find(key), std::string::npos) << user.status();
  }
}

TEST(PanelUserJsonTest, UnknownExtraKeysOfANewerPanelAreIgnored) {
  json j = PanelUser();
  j["last_modified_time"] = "2024-05-01 00:00:00";
  EXPECT_TRUE(ParsePanelUser(j.dump()).ok());
}

TEST(PanelUserJsonTest, GarbageIsDataLossWithAShortMessage) {
  const std::string huge = "<html>" + std::string(1'000'000, 'x');
  auto user = ParsePanelUser(huge);
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_LT(user.status().message().size(), 400u);
  EXPECT_NE(user.status().message().find("1000006 bytes"), std::string::npos) << user.status();
  EXPECT_EQ(ParsePanelUser("[1,2]").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePanelUserList("{}").status().code(), absl::StatusCode::kDataLoss);
}

TEST(PanelUserJsonTest, ListParsesEveryElement) {
  json list = json::array({PanelUser(), PanelUser()});
  list[1]["uuid"] = "00000000-0000-4000-8000-000000000002";
  auto users = ParsePanelUserList(list.dump());
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_EQ(users->users.size(), 2u);
  EXPECT_EQ(users->users[1].uuid(), "00000000-0000-4000-8000-000000000002");
  EXPECT_TRUE(users->skipped.empty());
  auto empty = ParsePanelUserList("[]");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->users.empty());
}

TEST(PanelUserJsonTest, AnUnreadableElementIsSkippedWithItsCauseAndTheRestIsKept) {
  json list = json::array({PanelUser(), PanelUser(), PanelUser(), PanelUser(), 42});
  list[1]["uuid"] = "00000000-0000-4000-8000-000000000002";
  list[1]["current_usage_GB"] = -0.5;  // the panel accepts a negative usage
  list[2]["uuid"] = "00000000-0000-4000-8000-000000000003";
  list[2]["start_date"] = "15/04/2024";
  list[3]["uuid"] = "00000000-0000-4000-8000-000000000004";
  auto users = ParsePanelUserList(list.dump());
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_EQ(users->users.size(), 2u);
  EXPECT_EQ(users->users[0].uuid(), "6098ea35-8cb2-4a08-ba15-2be25bc49cb6");
  EXPECT_EQ(users->users[1].uuid(), "00000000-0000-4000-8000-000000000004");
  ASSERT_EQ(users->skipped.size(), 3u);
  EXPECT_EQ(users->skipped[0].uuid, "00000000-0000-4000-8000-000000000002");
  EXPECT_EQ(users->skipped[0].field, "current_usage_GB");
  EXPECT_NE(users->skipped[0].reason.find("element 1"), std::string::npos)
      << users->skipped[0].reason;
  EXPECT_NE(users->skipped[0].reason.find("negative"), std::string::npos)
      << users->skipped[0].reason;
  EXPECT_EQ(users->skipped[1].uuid, "00000000-0000-4000-8000-000000000003");
  EXPECT_EQ(users->skipped[1].field, "start_date");
  EXPECT_EQ(users->skipped[2].uuid, "");  // not an object: no uuid to tell
  EXPECT_NE(users->skipped[2].reason.find("element 4"), std::string::npos);
}

TEST(PanelUserJsonTest, SkippedReasonsCarryNoSecretAndStayShort) {
  json list = json::array({PanelUser()});
  list[0]["added_by_uuid"] = 5;  // wrong type: named, its value never shown
  list[0]["wg_pk"] = json::array({"secret-key-material"});
  auto users = ParsePanelUserList(list.dump());
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->skipped.size(), 1u);
  EXPECT_EQ(users->skipped[0].field, "added_by_uuid");
  EXPECT_EQ(users->skipped[0].reason.find("secret-key-material"), std::string::npos);
  list[0] = PanelUser();
  list[0]["uuid"] = std::string(100000, 'u');  // not a uuid: neither kept nor logged in full
  list[0]["enable"] = "yes";
  users = ParsePanelUserList(list.dump());
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->skipped.size(), 1u);
  EXPECT_EQ(users->skipped[0].uuid, "");
  EXPECT_LT(users->skipped[0].reason.size(), 400u);
}

TEST(PanelUserJsonTest, AListThatIsNotAnArrayFailsAsAWhole) {
  EXPECT_EQ(ParsePanelUserList("{}").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePanelUserList("<html>").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePanelUserList("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePanelUserList("[{\"uuid\":").status().code(), absl::StatusCode::kDataLoss);
}

TEST(PatchBodyTest, HoldsOnlyTheSetFieldsAndNeverAUuid) {
  UserPatch p;
  p.current_usage_bytes = 123456789;
  auto body = BuildPatchBody(p);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "{\"current_usage_GB\":" + BytesToPanelGiB(123456789) + "}");
  p.last_online = "2024-05-01 12:00:00";
  p.package_days = 30;
  p.start_date = "2024-05-01";
  body = BuildPatchBody(p);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "{\"current_usage_GB\":" + BytesToPanelGiB(123456789) +
                       ",\"last_online\":\"2024-05-01 12:00:00\",\"package_days\":30,"
                       "\"start_date\":\"2024-05-01\"}");
  EXPECT_EQ(body->find("uuid"), std::string::npos);
  json parsed = json::parse(*body);
  EXPECT_EQ(parsed.size(), 4u);
}

TEST(PatchBodyTest, CurrentUsageTextRoundTripsExactly) {
  for (uint64_t bytes : {uint64_t{1}, uint64_t{1} << 20, 5 * kBytesPerGiB, uint64_t{123456789},
                         uint64_t{1'000'000'000'000'000}}) {
    UserPatch p;
    p.current_usage_bytes = bytes;
    auto body = BuildPatchBody(p);
    ASSERT_TRUE(body.ok());
    json parsed = json::parse(*body);
    auto back = PanelGiBToBytes(parsed["current_usage_GB"].get<double>());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, bytes) << *body;
  }
}

TEST(PatchBodyTest, RefusesWhatThePanelWouldMisapply) {
  EXPECT_EQ(BuildPatchBody(UserPatch{}).status().code(), absl::StatusCode::kInvalidArgument);
  UserPatch start_only;
  start_only.start_date = "2024-05-01";
  EXPECT_EQ(BuildPatchBody(start_only).status().code(), absl::StatusCode::kInvalidArgument);
  UserPatch iso;
  iso.last_online = "2024-05-01T12:00:00Z";
  EXPECT_EQ(BuildPatchBody(iso).status().code(), absl::StatusCode::kInvalidArgument);
  UserPatch above_cap;
  above_cap.current_usage_bytes = kPanelMaxBytes + 1;
  EXPECT_EQ(BuildPatchBody(above_cap).status().code(), absl::StatusCode::kInvalidArgument);
}

// The list as libcurl hands it over: in pieces of any size, cut anywhere
// (inside strings, escapes, numbers); each element is parsed on its own.
TEST(PanelUserListParserTest, PiecesOfAnySizeGiveTheSameUsersAsTheWholeBody) {
  json list = json::array({PanelUser(), PanelUser(), PanelUser(), 42});
  list[1]["uuid"] = "00000000-0000-4000-8000-000000000002";
  list[1]["name"] = "a \"quoted\" ] }, [ { name\\";
  list[2]["uuid"] = "00000000-0000-4000-8000-000000000003";
  list[2]["comment"] = nullptr;
  const std::string body = "  " + list.dump(2) + "\n";
  for (size_t piece : {size_t{1}, size_t{3}, size_t{17}, body.size()}) {
    std::vector<User> users;
    PanelUserListParser parser([&users](User user) { users.push_back(std::move(user)); });
    for (size_t at = 0; at < body.size(); at += piece) {
      ASSERT_TRUE(parser.Feed(std::string_view(body).substr(at, piece)).ok()) << piece;
    }
    ASSERT_TRUE(parser.Finish().ok()) << piece;
    ASSERT_EQ(users.size(), 3u) << piece;
    EXPECT_EQ(users[1].name(), "a \"quoted\" ] }, [ { name\\");
    EXPECT_EQ(users[2].uuid(), "00000000-0000-4000-8000-000000000003");
    ASSERT_EQ(parser.skipped().size(), 1u);  // the 42
    EXPECT_EQ(parser.elements(), 4u);
  }
}

TEST(PanelUserListParserTest, ABodyThatBreaksOffOrIsNoArrayIsDataLoss) {
  const std::string whole = json::array({PanelUser(), PanelUser()}).dump();
  for (const std::string& body :
       {whole.substr(0, whole.size() - 1), whole.substr(0, whole.size() / 2), std::string("{}"),
        std::string("<html>"), std::string(""), whole + "]", std::string("[1,]"),
        std::string("[,1]")}) {
    PanelUserListParser parser([](User) {});
    absl::Status status = parser.Feed(body);
    if (status.ok()) status = parser.Finish();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << body.substr(0, 40);
  }
  PanelUserListParser empty([](User) {});
  ASSERT_TRUE(empty.Feed(" [ ] ").ok());
  EXPECT_TRUE(empty.Finish().ok());
}

}  // namespace
}  // namespace hsync::hub
