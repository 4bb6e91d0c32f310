// RosterApplier on a real MariaDB with the Hiddify schema: creation with every
// NOT NULL column and the parent's exact keys, updates of every synced field,
// enable := is_active, removal under both policies, the mass-removal guard,
// and local-only fields left alone.
#include "reporter/roster/roster_applier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "reporter/collect/collector.h"
#include "reporter/roster/held_removals.h"
#include "tests/reporter/child_db.h"

namespace hsync::reporter {
namespace {

using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::User;
using hsync::testing::ChildDb;
using hsync::testing::RandomUuid;
using ::testing::HasSubstr;
using ::testing::Optional;

User MakeUser(const std::string& uuid, int n = 1) {
  User u;
  u.set_uuid(uuid);
  u.set_name(absl::StrCat("user ", n, " ✓"));
  u.set_usage_limit_bytes(uint64_t{50} << 30);
  u.set_current_usage_bytes(123456);  // the parent's usage: never copied
  u.set_package_days(30);
  u.set_start_date("2024-03-01");
  u.set_mode("monthly");
  u.set_last_reset_time("2024-03-01 00:00:00");
  u.set_last_online("2024-03-05 12:00:00");
  u.set_enable(true);
  u.set_is_active(true);
  u.set_comment("vip");
  u.set_telegram_id(987654321);
  u.set_lang("fa");
  u.set_ed25519_private_key(
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" +
      std::to_string(n) + "\n-----END OPENSSH PRIVATE KEY-----\n");
  u.set_ed25519_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + std::to_string(n));
  u.set_wg_pk("aGVsbG8gd29ybGQgdGhpcyBpcyBhIHdnIHByaXZhdGU=");
  u.set_wg_pub("cHVibGljIGtleSBvZiB0aGUgd2lyZWd1YXJkIHBlZXI=");
  u.set_wg_psk("cHJlc2hhcmVkIGtleSBmb3IgdGhlIHdpcmVndWFyZCA=");
  return u;
}

RosterUpdate Full(uint64_t version, const std::vector<User>& users) {
  RosterUpdate u;
  u.set_version(version);
  u.set_full(true);
  for (const auto& user : users) *u.add_upserts() = user;
  return u;
}

RosterUpdate Delta(uint64_t version, const std::vector<User>& upserts,
                   const std::vector<std::string>& removed = {}) {
  RosterUpdate u;
  u.set_version(version);
  for (const auto& user : upserts) *u.add_upserts() = user;
  for (const auto& r : removed) u.add_removed_uuids(r);
  return u;
}

class RosterApplierTest : public ::testing::Test {
 protected:
  RosterApplierTest() : child_("ros"), store_(child_.state_db(), false) {
    EXPECT_TRUE(store_.EnsureSchema(child_.conn()).ok());
    options_.panel_database = child_.panel_db();
  }

  RosterApplyResult Apply(const RosterUpdate& update) {
    RosterApplier applier(&store_, options_);
    auto r = applier.Apply(child_.conn(), update);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RosterApplyResult();
  }

  std::optional<std::string> Col(const std::string& uuid, const std::string& column) {
    return child_.Column(uuid, column);
  }

  uint64_t HeldCount() {
    return child_.CountRows(absl::StrCat("`", child_.state_db(), "`.held_removal"));
  }

  // A trigger (refuse_insert / refuse_update) that refuses `uuid`'s row.
  void RefuseInTrigger(const std::string& event, const std::string& uuid) {
    const std::string name = event == "INSERT" ? "refuse_insert" : "refuse_update";
    child_.Exec(absl::StrCat("CREATE TRIGGER `", child_.panel_db(), "`.", name, " BEFORE ", event,
                             " ON ", child_.UserTable(), " FOR EACH ROW IF NEW.uuid = '", uuid,
                             "' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test';"
                             " END IF"));
  }

  ChildDb child_;
  StateStore store_;
  RosterApplyOptions options_;
};

TEST_F(RosterApplierTest, CreatesUsersWithEveryNotNullColumnAndTheParentsExactKeys) {
  const std::string a = RandomUuid(), b = RandomUuid();
  User ua = MakeUser(a, 1), ub = MakeUser(b, 2);
  ub.clear_start_date();
  ub.clear_last_reset_time();
  ub.clear_telegram_id();
  ub.set_comment("");
  RosterApplyResult r = Apply(Full(1, {ua, ub}));
  EXPECT_EQ(r.created, 2u);
  EXPECT_TRUE(r.changed());
  EXPECT_FALSE(r.guard_tripped);

  EXPECT_THAT(Col(a, "name"), Optional(ua.name()));
  EXPECT_THAT(Col(a, "usage_limit"), Optional(absl::StrCat(uint64_t{50} << 30)));
  EXPECT_THAT(Col(a, "package_days"), Optional(std::string("30")));
  EXPECT_THAT(Col(a, "mode"), Optional(std::string("monthly")));
  EXPECT_THAT(Col(a, "comment"), Optional(std::string("vip")));
  EXPECT_THAT(Col(a, "start_date"), Optional(std::string("2024-03-01")));
  EXPECT_THAT(Col(a, "last_reset_time"), Optional(std::string("2024-03-01")));
  EXPECT_THAT(Col(a, "telegram_id"), Optional(std::string("987654321")));
  EXPECT_THAT(Col(a, "lang"), Optional(std::string("fa")));
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("1")));
  EXPECT_THAT(Col(a, "ed25519_private_key"), Optional(ua.ed25519_private_key()));
  EXPECT_THAT(Col(a, "ed25519_public_key"), Optional(ua.ed25519_public_key()));
  EXPECT_THAT(Col(a, "wg_pk"), Optional(ua.wg_pk()));
  EXPECT_THAT(Col(a, "wg_pub"), Optional(ua.wg_pub()));
  EXPECT_THAT(Col(a, "wg_psk"), Optional(ua.wg_psk()));
  // Local columns get the panel's defaults, not the parent's values.
  EXPECT_THAT(Col(a, "current_usage"), Optional(std::string("0")));
  EXPECT_THAT(Col(a, "max_ips"), Optional(std::string("100")));
  EXPECT_THAT(Col(a, "last_online"), Optional(std::string("0001-01-01 00:00:00")));
  // As the panel's insert hook: a generated username, one per user.
  EXPECT_THAT(Col(a, "username"), Optional(::testing::MatchesRegex("user[a-z0-9]{8}")));
  EXPECT_NE(Col(a, "username"), Col(b, "username"));
  EXPECT_THAT(Col(a, "password"), Optional(std::string("")));
  EXPECT_THAT(Col(a, "added_by"), Optional(std::string("1")));

  EXPECT_EQ(Col(b, "start_date"), std::nullopt);
  EXPECT_EQ(Col(b, "last_reset_time"), std::nullopt);
  EXPECT_EQ(Col(b, "telegram_id"), std::nullopt);
  EXPECT_EQ(Col(b, "comment"), std::nullopt);
  EXPECT_THAT(Col(b, "wg_psk"), Optional(ub.wg_psk()));

  // The same roster again changes nothing.
  r = Apply(Full(2, {ua, ub}));
  EXPECT_FALSE(r.changed());
  EXPECT_EQ(r.unchanged, 2u);
}

TEST_F(RosterApplierTest, OwnerIsTheLowestIdSuperAdmin) {
  child_.Exec(absl::StrCat("INSERT INTO `", child_.panel_db(), "`.admin_user (id, mode, can_add_admin,"
                           " max_users, max_active_users, uuid, name) VALUES (7, 'super_admin', 1,"
                           " 0, 0, '", RandomUuid(), "', 'second owner')"));
  child_.Exec(absl::StrCat("UPDATE `", child_.panel_db(), "`.admin_user SET mode = 'admin' WHERE id = 1"));
  const std::string a = RandomUuid();
  Apply(Full(1, {MakeUser(a)}));
  EXPECT_THAT(Col(a, "added_by"), Optional(std::string("7")));
}

TEST_F(RosterApplierTest, UpdatesEverySyncedFieldAndOnlyRowsThatDiffer) {
  const std::string a = RandomUuid(), other = RandomUuid();
  Apply(Full(1, {MakeUser(a, 1), MakeUser(other, 2)}));
  child_.Exec(absl::StrCat("CREATE TABLE `", child_.panel_db(), "`.row_writes (uuid VARCHAR(36))"));
  child_.Exec(absl::StrCat("CREATE TRIGGER `", child_.panel_db(), "`.count_row_writes BEFORE UPDATE ON ",
                           child_.UserTable(), " FOR EACH ROW INSERT INTO `", child_.panel_db(),
                           "`.row_writes VALUES (OLD.uuid)"));
  User u = MakeUser(a, 1);
  u.set_name("renamed");
  u.set_usage_limit_bytes(uint64_t{7} << 30);
  u.set_package_days(365);
  u.set_mode("weekly");
  u.set_comment("changed");
  u.set_start_date("2025-01-02");
  u.set_last_reset_time("2025-01-03 00:00:00");
  u.set_telegram_id(42);
  u.set_lang("ru");
  u.set_ed25519_private_key("-----BEGIN OPENSSH PRIVATE KEY-----\nNEW\n-----END OPENSSH PRIVATE KEY-----\n");
  u.set_ed25519_public_key("ssh-ed25519 NEWKEY");
  u.set_wg_pk("bmV3IHdnIHByaXZhdGUga2V5IGZvciB0aGlzIHVzZXI=");
  u.set_wg_pub("bmV3IHdnIHB1YmxpYyBrZXkgZm9yIHRoaXMgdXNlcg=");
  u.set_wg_psk("bmV3IHByZXNoYXJlZCBrZXkgZm9yIHRoaXMgdXNlcg=");
  RosterApplyResult r = Apply(Delta(2, {u, MakeUser(other, 2)}));
  EXPECT_EQ(r.updated, 1u);
  EXPECT_EQ(r.unchanged, 1u);
  EXPECT_THAT(Col(a, "name"), Optional(std::string("renamed")));
  EXPECT_THAT(Col(a, "usage_limit"), Optional(absl::StrCat(uint64_t{7} << 30)));
  EXPECT_THAT(Col(a, "package_days"), Optional(std::string("365")));
  EXPECT_THAT(Col(a, "mode"), Optional(std::string("weekly")));
  EXPECT_THAT(Col(a, "comment"), Optional(std::string("changed")));
  EXPECT_THAT(Col(a, "start_date"), Optional(std::string("2025-01-02")));
  EXPECT_THAT(Col(a, "last_reset_time"), Optional(std::string("2025-01-03")));
  EXPECT_THAT(Col(a, "telegram_id"), Optional(std::string("42")));
  EXPECT_THAT(Col(a, "lang"), Optional(std::string("ru")));
  EXPECT_THAT(Col(a, "ed25519_private_key"), Optional(u.ed25519_private_key()));
  EXPECT_THAT(Col(a, "ed25519_public_key"), Optional(u.ed25519_public_key()));
  EXPECT_THAT(Col(a, "wg_pk"), Optional(u.wg_pk()));
  EXPECT_THAT(Col(a, "wg_pub"), Optional(u.wg_pub()));
  EXPECT_THAT(Col(a, "wg_psk"), Optional(u.wg_psk()));
  // Clearing optional fields.
  u.clear_start_date();
  u.clear_telegram_id();
  u.set_comment("");
  Apply(Delta(3, {u}));
  EXPECT_EQ(Col(a, "start_date"), std::nullopt);
  EXPECT_EQ(Col(a, "telegram_id"), std::nullopt);
  EXPECT_EQ(Col(a, "comment"), std::nullopt);
  // Exactly two row writes, both of user a; `other` was never rewritten.
  EXPECT_EQ(child_.CountRows(absl::StrCat("`", child_.panel_db(), "`.row_writes")), 2u);
  EXPECT_EQ(child_.CountRows(absl::StrCat("`", child_.panel_db(), "`.row_writes WHERE uuid = '", a, "'")), 2u);
}

TEST_F(RosterApplierTest, EnableFollowsTheParentsIsActive) {
  const std::string a = RandomUuid();
  User u = MakeUser(a);
  Apply(Full(1, {u}));
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("1")));
  // Blocked by the admin.
  u.set_enable(false);
  u.set_is_active(false);
  EXPECT_EQ(Apply(Delta(2, {u})).updated, 1u);
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("0")));
  // Unblocked.
  u.set_enable(true);
  u.set_is_active(true);
  Apply(Delta(3, {u}));
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("1")));
  // Over quota: enabled on the parent, but not active.
  u.set_current_usage_bytes(u.usage_limit_bytes() + 1);
  u.set_is_active(false);
  Apply(Delta(4, {u}));
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("0")));
  // Quota raised: active again.
  u.set_usage_limit_bytes(u.usage_limit_bytes() * 2);
  u.set_is_active(true);
  Apply(Delta(5, {u}));
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("1")));
  // Expired package.
  u.set_start_date("2020-01-01");
  u.set_is_active(false);
  Apply(Delta(6, {u}));
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("0")));
  // A blocked user is created disabled.
  const std::string b = RandomUuid();
  User blocked = MakeUser(b);
  blocked.set_enable(false);
  blocked.set_is_active(false);
  Apply(Delta(7, {blocked}));
  EXPECT_THAT(Col(b, "enable"), Optional(std::string("0")));
}

TEST_F(RosterApplierTest, LocalOnlyFieldsAreNeverTouched) {
  const std::string a = RandomUuid();
  User u = MakeUser(a);
  Apply(Full(1, {u}));
  const auto id = Col(a, "id");
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(), " SET current_usage = 777, username = 'local',"
                           " password = 'secret', max_ips = 3, last_online = '2024-06-01 01:02:03'"
                           " WHERE uuid = '", a, "'"));
  u.set_name("changed");
  u.set_current_usage_bytes(99999999);
  u.set_is_active(false);
  EXPECT_EQ(Apply(Full(2, {u})).updated, 1u);
  EXPECT_THAT(Col(a, "name"), Optional(std::string("changed")));
  EXPECT_EQ(Col(a, "id"), id);
  EXPECT_THAT(Col(a, "current_usage"), Optional(std::string("777")));
  EXPECT_THAT(Col(a, "username"), Optional(std::string("local")));
  EXPECT_THAT(Col(a, "password"), Optional(std::string("secret")));
  EXPECT_THAT(Col(a, "max_ips"), Optional(std::string("3")));
  EXPECT_THAT(Col(a, "last_online"), Optional(std::string("2024-06-01 01:02:03")));
}

TEST_F(RosterApplierTest, AbsentUsersAreDisabledByDefault) {
  const std::string a = RandomUuid(), b = RandomUuid(), c = RandomUuid();
  Apply(Full(1, {MakeUser(a), MakeUser(b), MakeUser(c)}));
  RosterApplyResult r = Apply(Full(2, {MakeUser(a), MakeUser(c)}));
  EXPECT_EQ(r.disabled, 1u);
  EXPECT_EQ(r.removed, 0u);
  EXPECT_THAT(Col(b, "enable"), Optional(std::string("0")));
  EXPECT_THAT(Col(b, "name"), Optional(std::string("user 1 ✓")));  // the row stays
  // Already disabled: nothing more to do.
  EXPECT_EQ(Apply(Full(3, {MakeUser(a), MakeUser(c)})).disabled, 0u);
  // A delta's removed_uuids.
  r = Apply(Delta(4, {}, {c}));
  EXPECT_EQ(r.disabled, 1u);
  EXPECT_THAT(Col(c, "enable"), Optional(std::string("0")));
  // Back on the parent: enabled again.
  Apply(Delta(5, {MakeUser(b)}));
  EXPECT_THAT(Col(b, "enable"), Optional(std::string("1")));
}

TEST_F(RosterApplierTest, AbsentUsersAreDeletedWithTheDeletePolicy) {
  options_.remove_policy = RemovePolicy::kDelete;
  const std::string a = RandomUuid(), b = RandomUuid(), c = RandomUuid();
  Apply(Full(1, {MakeUser(a), MakeUser(b), MakeUser(c)}));
  child_.Exec(absl::StrCat("INSERT INTO `", child_.state_db(),
                           "`.watermark (user_id, uuid, reported_bytes, last_online_reported,"
                           " last_reset_seen) VALUES (", *Col(b, "id"), ", '", b, "', 5, NULL, NULL)"));
  RosterApplyResult r = Apply(Full(2, {MakeUser(a), MakeUser(c)}));
  EXPECT_EQ(r.removed, 1u);
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_EQ(Col(b, "id"), std::nullopt);
  EXPECT_EQ(child_.CountRows(absl::StrCat("`", child_.state_db(), "`.watermark WHERE uuid = '", b, "'")), 0u);
  r = Apply(Delta(3, {}, {c, RandomUuid()}));  // an unknown uuid is ignored
  EXPECT_EQ(r.removed, 1u);
  EXPECT_EQ(Col(c, "id"), std::nullopt);
  EXPECT_TRUE(Col(a, "id").has_value());
}

TEST_F(RosterApplierTest, GuardSkipsRemovalWhenTheRosterIsEmpty) {
  for (int i = 0; i < 3; ++i) Apply(Delta(1, {MakeUser(RandomUuid(), i)}));
  RosterApplyResult r = Apply(Full(2, {}));
  EXPECT_TRUE(r.guard_tripped);
  EXPECT_THAT(r.guard_reason, HasSubstr("empty"));
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_EQ(r.held, 3u);
  EXPECT_EQ(child_.CountRows(child_.UserTable() + " WHERE enable = 1"), 3u);
  // Held already: the next empty roster neither removes them nor trips again.
  options_.remove_policy = RemovePolicy::kDelete;
  r = Apply(Full(3, {}));
  EXPECT_FALSE(r.guard_tripped);
  EXPECT_EQ(r.still_held, 3u);
  EXPECT_EQ(r.removed, 0u);
  EXPECT_EQ(child_.CountRows(child_.UserTable()), 3u);
  EXPECT_EQ(HeldCount(), 3u);
}

TEST_F(RosterApplierTest, GuardSkipsMassRemovalButAppliesTheRestOfTheUpdate) {
  std::vector<User> users;
  for (int i = 0; i < 60; ++i) users.push_back(MakeUser(RandomUuid(), i));
  Apply(Full(1, users));
  // 16 of 60 would go: more than max(10, 0.25 * 60 = 15).
  std::vector<User> kept(users.begin(), users.begin() + 44);
  kept[0].set_name("still applied");
  RosterApplyResult r = Apply(Full(2, kept));
  EXPECT_TRUE(r.guard_tripped);
  EXPECT_THAT(r.guard_reason, HasSubstr("16 of 60"));
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_EQ(r.updated, 1u);
  EXPECT_EQ(r.held, 16u);
  EXPECT_THAT(Col(kept[0].uuid(), "name"), Optional(std::string("still applied")));
  EXPECT_EQ(child_.CountRows(child_.UserTable() + " WHERE enable = 1"), 60u);
  // One of them is back on the parent: no longer held; the other 15 stay held
  // (not removed, not judged again).
  kept.push_back(users[44]);
  r = Apply(Full(3, kept));
  EXPECT_FALSE(r.guard_tripped);
  EXPECT_EQ(r.unheld, 1u);
  EXPECT_EQ(r.still_held, 15u);
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_EQ(HeldCount(), 15u);
  EXPECT_EQ(child_.CountRows(child_.UserTable() + " WHERE enable = 1"), 60u);
  // A new removal next to the held ones is judged on its own.
  kept.pop_back();
  r = Apply(Full(4, kept));
  EXPECT_FALSE(r.guard_tripped);
  EXPECT_EQ(r.disabled, 1u);
  EXPECT_THAT(Col(users[44].uuid(), "enable"), Optional(std::string("0")));
  EXPECT_EQ(HeldCount(), 15u);
}

TEST_F(RosterApplierTest, GuardLetsRemovalsUpToTheThresholdThrough) {
  std::vector<User> users;
  for (int i = 0; i < 60; ++i) users.push_back(MakeUser(RandomUuid(), i));
  Apply(Full(1, users));
  // 15 of 60 is allowed.
  RosterApplyResult r = Apply(Full(2, std::vector<User>(users.begin(), users.begin() + 45)));
  EXPECT_FALSE(r.guard_tripped);
  EXPECT_EQ(r.disabled, 15u);
  EXPECT_EQ(HeldCount(), 0u);
  // Delta removals too: 10 of 60 with a 10% fraction.
  options_.guard_fraction = 0.1;
  std::vector<std::string> removed;
  for (int i = 0; i < 10; ++i) removed.push_back(users[i].uuid());
  EXPECT_EQ(Apply(Delta(3, {}, removed)).disabled, 10u);
}

TEST_F(RosterApplierTest, DeltaRemovingMoreThanTheThresholdIsHeldNotApplied) {
  std::vector<User> users;
  for (int i = 0; i < 60; ++i) users.push_back(MakeUser(RandomUuid(), i));
  Apply(Full(1, users));
  // 11 of 60 > max(10, 0.1 * 60).
  options_.guard_fraction = 0.1;
  std::vector<std::string> removed;
  for (int i = 0; i < 11; ++i) removed.push_back(users[i].uuid());
  RosterApplyResult r = Apply(Delta(2, {}, removed));
  EXPECT_TRUE(r.guard_tripped);
  EXPECT_THAT(r.guard_reason, HasSubstr("11 of 60"));
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_EQ(r.held, 11u);
  EXPECT_EQ(HeldCount(), 11u);
  EXPECT_EQ(child_.CountRows(child_.UserTable() + " WHERE enable = 1"), 60u);
  // The next full roster lacks them too: still held, no new trip.
  r = Apply(Full(3, std::vector<User>(users.begin() + 11, users.end())));
  EXPECT_FALSE(r.guard_tripped);
  EXPECT_EQ(r.still_held, 11u);
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_EQ(child_.CountRows(child_.UserTable() + " WHERE enable = 1"), 60u);
  // One comes back on the parent in a delta: dropped from the held set.
  r = Apply(Delta(4, {users[0]}));
  EXPECT_EQ(r.unheld, 1u);
  EXPECT_EQ(HeldCount(), 10u);
  auto summary = HeldRemovals(&store_).Summary(child_.conn());
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->count, 10u);
  EXPECT_THAT(summary->reason, HasSubstr("11 of 60"));
  EXPECT_NE(summary->since, absl::InfinitePast());
}

TEST_F(RosterApplierTest, DeltaRemovingEveryUserTripsTheGuard) {
  const std::string a = RandomUuid(), b = RandomUuid(), c = RandomUuid();
  Apply(Full(1, {MakeUser(a), MakeUser(b), MakeUser(c)}));
  // 3 users are fewer than guard_min, but they are all of them.
  RosterApplyResult r = Apply(Delta(2, {}, {a, b, c}));
  EXPECT_TRUE(r.guard_tripped);
  EXPECT_THAT(r.guard_reason, HasSubstr("empty"));
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_EQ(r.held, 3u);
  EXPECT_EQ(child_.CountRows(child_.UserTable() + " WHERE enable = 1"), 3u);
  EXPECT_EQ(HeldCount(), 3u);
}

TEST_F(RosterApplierTest, DeltaRemovingTheLastUsersOneByOneTripsAtTheLast) {
  const std::string a = RandomUuid(), b = RandomUuid(), c = RandomUuid();
  Apply(Full(1, {MakeUser(a), MakeUser(b), MakeUser(c)}));
  EXPECT_EQ(Apply(Delta(2, {}, {a})).disabled, 1u);
  EXPECT_EQ(Apply(Delta(3, {}, {b})).disabled, 1u);
  RosterApplyResult r = Apply(Delta(4, {}, {c}));
  EXPECT_TRUE(r.guard_tripped);
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_THAT(Col(c, "enable"), Optional(std::string("1")));
  // With the delete policy the same.
  options_.remove_policy = RemovePolicy::kDelete;
  const std::string d = RandomUuid();
  Apply(Delta(5, {MakeUser(d)}));
  child_.Exec(absl::StrCat("DELETE FROM ", child_.UserTable(), " WHERE uuid IN ('", a, "','", b, "')"));
  r = Apply(Delta(6, {}, {d}));
  EXPECT_TRUE(r.guard_tripped);
  EXPECT_EQ(r.removed, 0u);
  EXPECT_TRUE(Col(d, "id").has_value());
}

TEST_F(RosterApplierTest, InvalidUserIsSkippedNeverTreatedAsAbsent) {
  const std::string a = RandomUuid(), b = RandomUuid();
  Apply(Full(1, {MakeUser(a), MakeUser(b)}));
  User bad = MakeUser(b);
  bad.set_mode("fortnightly");
  bad.set_name("would change");
  User lang_bad = MakeUser(RandomUuid());
  lang_bad.set_lang("xx");
  User date_bad = MakeUser(RandomUuid());
  date_bad.set_start_date("2024-13-45");
  User uuid_bad = MakeUser("not-a-uuid");
  RosterApplyResult r = Apply(Full(2, {MakeUser(a), bad, lang_bad, date_bad, uuid_bad}));
  ASSERT_EQ(r.skipped.size(), 4u);
  EXPECT_EQ(r.skipped[0].uuid, b);
  EXPECT_THAT(r.skipped[0].reason, HasSubstr("mode"));
  EXPECT_THAT(r.skipped[1].reason, HasSubstr("lang"));
  EXPECT_THAT(r.skipped[2].reason, HasSubstr("start_date"));
  EXPECT_THAT(r.skipped[3].reason, HasSubstr("uuid"));
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_THAT(Col(b, "enable"), Optional(std::string("1")));
  EXPECT_THAT(Col(b, "name"), Optional(std::string("user 1 ✓")));
}

TEST_F(RosterApplierTest, ARowTheDatabaseRefusesSkipsOnlyThatUser) {
  const std::string a = RandomUuid(), refused_insert = RandomUuid(), c = RandomUuid();
  std::vector<User> users = {MakeUser(a, 1), MakeUser(refused_insert, 2), MakeUser(c, 3)};
  for (int i = 0; i < 5; ++i) users.push_back(MakeUser(RandomUuid(), 10 + i));
  RefuseInTrigger("INSERT", refused_insert);
  RosterApplyResult r = Apply(Full(1, users));
  EXPECT_EQ(r.created, users.size() - 1);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0].uuid, refused_insert);
  EXPECT_THAT(r.skipped[0].reason, HasSubstr("refused by the test"));
  EXPECT_FALSE(Col(refused_insert, "id").has_value());
  EXPECT_TRUE(Col(a, "id").has_value());
  EXPECT_TRUE(Col(c, "id").has_value());

  // Updates: one row refused by a trigger, one by a column narrower than the
  // panel's (validation passes, the database says no); the rest applied.
  child_.Exec(absl::StrCat("ALTER TABLE ", child_.UserTable(), " MODIFY name VARCHAR(16) NOT NULL"));
  RefuseInTrigger("UPDATE", c);
  for (auto& u : users) u.set_name("renamed");
  users[0].set_name("a name longer than sixteen characters");
  r = Apply(Full(2, users));
  ASSERT_EQ(r.skipped.size(), 3u);
  std::map<std::string, std::string> why;
  for (const auto& s : r.skipped) why[s.uuid] = s.reason;
  EXPECT_THAT(why[a], HasSubstr("name"));
  EXPECT_THAT(why[a], HasSubstr("refused"));
  EXPECT_THAT(why[c], HasSubstr("refused by the test"));
  EXPECT_THAT(why[refused_insert], HasSubstr("refused by the test"));
  EXPECT_EQ(r.updated, users.size() - 3);
  EXPECT_THAT(Col(users[5].uuid(), "name"), Optional(std::string("renamed")));
  EXPECT_THAT(Col(a, "name"), Optional(std::string("user 1 ✓")));
  EXPECT_THAT(Col(c, "name"), Optional(std::string("user 3 ✓")));
  // Never treated as absent: nobody disabled.
  EXPECT_EQ(r.disabled, 0u);
  EXPECT_THAT(Col(c, "enable"), Optional(std::string("1")));

  // A removal the database refuses (the UPDATE trigger on c) skips c only.
  std::vector<std::string> gone = {c, users[3].uuid()};
  r = Apply(Delta(3, {}, gone));
  EXPECT_EQ(r.disabled, 1u);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0].uuid, c);
  EXPECT_THAT(r.skipped[0].reason, HasSubstr("could not be disabled"));
  EXPECT_THAT(Col(users[3].uuid(), "enable"), Optional(std::string("0")));

  // Retried by the next update carrying it: once the database accepts it.
  child_.Exec(absl::StrCat("DROP TRIGGER `", child_.panel_db(), "`.refuse_insert"));
  r = Apply(Delta(4, {users[1]}));
  EXPECT_THAT(r.skipped, ::testing::IsEmpty());
  EXPECT_EQ(r.created, 1u);
  EXPECT_TRUE(Col(refused_insert, "id").has_value());
}

TEST_F(RosterApplierTest, ARefusedDeleteSkipsOnlyThatUser) {
  options_.remove_policy = RemovePolicy::kDelete;
  std::vector<User> users;
  for (int i = 0; i < 4; ++i) users.push_back(MakeUser(RandomUuid(), i));
  Apply(Full(1, users));
  child_.Exec(absl::StrCat("CREATE TRIGGER `", child_.panel_db(), "`.refuse_delete BEFORE DELETE ON ",
                           child_.UserTable(), " FOR EACH ROW IF OLD.uuid = '", users[0].uuid(),
                           "' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kept by the test';"
                           " END IF"));
  RosterApplyResult r = Apply(Full(2, {users[2], users[3]}));
  EXPECT_EQ(r.removed, 1u);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0].uuid, users[0].uuid());
  EXPECT_THAT(r.skipped[0].reason, HasSubstr("kept by the test"));
  EXPECT_TRUE(Col(users[0].uuid(), "id").has_value());
  EXPECT_FALSE(Col(users[1].uuid(), "id").has_value());
}

TEST_F(RosterApplierTest, AFailedUpdateChangesNothing) {
  const std::string a = RandomUuid();
  Apply(Full(1, {MakeUser(a)}));
  child_.Exec(absl::StrCat("UPDATE `", child_.panel_db(), "`.admin_user SET mode = 'admin'"));
  User renamed = MakeUser(a);
  renamed.set_name("renamed");
  RosterApplier applier(&store_, options_);
  auto r = applier.Apply(child_.conn(), Delta(2, {renamed, MakeUser(RandomUuid())}));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("super_admin"));
  EXPECT_THAT(Col(a, "name"), Optional(std::string("user 1 ✓")));
  EXPECT_EQ(child_.CountRows(child_.UserTable()), 1u);
}

TEST_F(RosterApplierTest, ABlockIsNotDelayedByACollectInProgress) {
  const std::string a = RandomUuid();
  User u = MakeUser(a);
  Apply(Full(1, {u}));
  // A collect holds the state lock (as it does for its whole transaction).
  auto collect_conn = MariaDbConnection::Connect(child_.Options());
  ASSERT_TRUE(collect_conn.ok());
  ASSERT_TRUE((*collect_conn)->Begin().ok());
  ASSERT_TRUE(store_.LockMeta(**collect_conn).ok());
  u.set_enable(false);
  u.set_is_active(false);
  const absl::Time start = absl::Now();
  EXPECT_EQ(Apply(Delta(2, {u})).updated, 1u);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_THAT(Col(a, "enable"), Optional(std::string("0")));
  ASSERT_TRUE((*collect_conn)->Rollback().ok());
}

TEST_F(RosterApplierTest, WritingLastResetTimeIsNotMistakenForAReset) {
  const std::string a = RandomUuid();
  User u = MakeUser(a);
  Apply(Full(1, {u}));
  child_.SetUsage(a, 50'000'000);
  CollectOptions collect;
  collect.node_id = "n";
  collect.panel_database = child_.panel_db();
  Collector collector(&store_, collect);
  ASSERT_TRUE(collector.CollectOnce(child_.conn(), absl::Now()).ok());
  u.set_last_reset_time("2030-05-05 00:00:00");  // the parent's reset, not the child's
  Apply(Delta(2, {u}));
  child_.AddUsage(a, 2'000'000);
  auto r = collector.CollectOnce(child_.conn(), absl::Now());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->resets_detected, 0u);
  EXPECT_EQ(r->bytes_reported, 2'000'000u);
}

TEST_F(RosterApplierTest, ALocalResetHiddenByTheRostersLastResetTimeIsStillCounted) {
  const std::string a = RandomUuid();
  User u = MakeUser(a);  // last_reset_time 2024-03-01 on the parent
  Apply(Full(1, {u}));
  child_.SetUsage(a, 40'000'000);
  CollectOptions collect;
  collect.node_id = "n";
  collect.panel_database = child_.panel_db();
  Collector collector(&store_, collect);
  ASSERT_TRUE(collector.CollectOnce(child_.conn(), absl::Now()).ok());  // 40 MB reported
  // The child panel resets the user (new date) and 55 MB arrive, more than the
  // watermark; before the next collect the roster writes the parent's date back.
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                           " SET current_usage = 55000000, last_reset_time = '2024-04-01' WHERE uuid = '", a, "'"));
  u.set_last_reset_time("2024-03-31 00:00:00");
  EXPECT_EQ(Apply(Delta(2, {u})).updated, 1u);
  auto r = collector.CollectOnce(child_.conn(), absl::Now());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes_reported, 55'000'000u);  // all of it, not 55 - 40
}

}  // namespace
}  // namespace hsync::reporter
