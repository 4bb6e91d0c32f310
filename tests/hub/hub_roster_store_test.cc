// RosterStore: diffs, versions, deltas and full updates as a stream sees
// them, PATCH answers newer than a list read, history limits, watchers.
#include "hub/roster/roster_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "absl/strings/str_format.h"
#include "common/proto_time.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::RosterSnapshot;
using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::User;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

std::string Uuid(int i) { return absl::StrFormat("00000000-0000-4000-8000-%012d", i); }

User MakeUser(int i, uint64_t usage = 0, bool active = true) {
  User user;
  user.set_uuid(Uuid(i));
  user.set_name(absl::StrFormat("user%d", i));
  user.set_usage_limit_bytes(uint64_t{10} << 30);
  user.set_current_usage_bytes(usage);
  user.set_package_days(30);
  user.set_mode("no_reset");
  user.set_last_online("0001-01-01 00:00:00");
  user.set_enable(true);
  user.set_is_active(active);
  user.set_ed25519_private_key(std::string(387, 'k'));
  user.set_wg_pk(std::string(44, 'w'));
  return user;
}

RosterUpdate Decode(const std::shared_ptr<const EncodedRosterUpdate>& encoded) {
  RosterUpdate update;
  EXPECT_TRUE(update.ParseFromString(encoded->message.Flatten()));
  EXPECT_EQ(update.version(), encoded->version);
  EXPECT_EQ(update.full(), encoded->full);
  return update;
}

std::set<std::string> Uuids(const RosterUpdate& update) {
  std::set<std::string> out;
  for (const User& user : update.upserts()) out.insert(user.uuid());
  return out;
}

const absl::Time kT0 = absl::FromUnixSeconds(1'750'000'000);

TEST(RosterStoreTest, NothingToSendBeforeTheFirstRead) {
  RosterStore store;
  EXPECT_FALSE(store.loaded());
  EXPECT_EQ(store.NextUpdate(0), nullptr);
  EXPECT_EQ(store.FullUpdate(), nullptr);
}

TEST(RosterStoreTest, AKeptUserIsNotRemovedAndANeverSeenOneStaysAbsent) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2, 5), MakeUser(3)}, kT0).ok());
  // User 2 is listed but unreadable (kept), user 9 too but never seen, user 3
  // is really gone, user 1 changed.
  KeptUsers kept;
  kept.uuids = {Uuid(2), Uuid(9)};
  absl::StatusOr<RosterChange> change =
      store.ReplaceAll({MakeUser(1, 7)}, kT0 + absl::Seconds(1), kept);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->upserts, 1u);
  EXPECT_EQ(change->removals, 1u);
  RosterUpdate delta = Decode(store.NextUpdate(1));
  EXPECT_THAT(Uuids(delta), ElementsAre(Uuid(1)));
  EXPECT_THAT(delta.removed_uuids(), ElementsAre(Uuid(3)));
  ASSERT_TRUE(store.Lookup(Uuid(2)).has_value());
  EXPECT_EQ(store.Lookup(Uuid(2))->current_usage_bytes(), 5u);  // as it was
  EXPECT_FALSE(store.Lookup(Uuid(9)).has_value());
  EXPECT_EQ(store.size(), 2u);

  // An unreadable element without a uuid: nobody is removed, changes still go out.
  KeptUsers all;
  all.all = true;
  change = store.ReplaceAll({MakeUser(4)}, kT0 + absl::Seconds(2), all);
  ASSERT_TRUE(change.ok());
  EXPECT_EQ(change->upserts, 1u);
  EXPECT_EQ(change->removals, 0u);
  EXPECT_EQ(store.size(), 3u);
  // Readable again and still listed: back to normal diffs.
  change = store.ReplaceAll({MakeUser(1, 7), MakeUser(2, 5), MakeUser(4)}, kT0 + absl::Seconds(3));
  ASSERT_TRUE(change.ok());
  EXPECT_FALSE(change->changed);
}

TEST(RosterStoreTest, FirstReadIsVersionOneAndAFullUpdate) {
  RosterStore store;
  absl::StatusOr<RosterChange> change = store.ReplaceAll({MakeUser(1), MakeUser(2), MakeUser(3)}, kT0);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(change->changed);
  EXPECT_EQ(change->version, 1u);
  EXPECT_EQ(change->upserts, 3u);
  EXPECT_TRUE(store.loaded());
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.fetched_at(), kT0);
  RosterUpdate full = Decode(store.NextUpdate(0));
  EXPECT_TRUE(full.full());
  EXPECT_EQ(full.version(), 1u);
  EXPECT_THAT(Uuids(full), UnorderedElementsAre(Uuid(1), Uuid(2), Uuid(3)));
  EXPECT_EQ(store.NextUpdate(1), nullptr);  // up to date
}

TEST(RosterStoreTest, AnEmptyFirstReadStillLoadsTheRoster) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({}, kT0).ok());
  EXPECT_TRUE(store.loaded());
  EXPECT_EQ(store.version(), 1u);
  RosterUpdate full = Decode(store.NextUpdate(0));
  EXPECT_TRUE(full.full());
  EXPECT_EQ(full.upserts_size(), 0);
}

TEST(RosterStoreTest, UnchangedReadPublishesNothing) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2)}, kT0).ok());
  absl::StatusOr<RosterChange> change =
      store.ReplaceAll({MakeUser(2), MakeUser(1)}, kT0 + absl::Seconds(30));
  ASSERT_TRUE(change.ok());
  EXPECT_FALSE(change->changed);
  EXPECT_EQ(store.version(), 1u);
  EXPECT_EQ(store.fetched_at(), kT0 + absl::Seconds(30));
}

TEST(RosterStoreTest, ChangesBecomeOneDeltaWithUpsertsAndRemovals) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2), MakeUser(3)}, kT0).ok());
  absl::StatusOr<RosterChange> change =
      store.ReplaceAll({MakeUser(1), MakeUser(2, 500), MakeUser(4)}, kT0 + absl::Seconds(30));
  ASSERT_TRUE(change.ok());
  EXPECT_EQ(change->version, 2u);
  EXPECT_EQ(change->upserts, 2u);
  EXPECT_EQ(change->removals, 1u);
  RosterUpdate delta = Decode(store.NextUpdate(1));
  EXPECT_FALSE(delta.full());
  EXPECT_EQ(delta.version(), 2u);
  EXPECT_THAT(Uuids(delta), UnorderedElementsAre(Uuid(2), Uuid(4)));
  EXPECT_THAT(delta.removed_uuids(), ElementsAre(Uuid(3)));
  for (const User& user : delta.upserts()) {
    if (user.uuid() == Uuid(2)) {
      EXPECT_EQ(user.current_usage_bytes(), 500u);
    }
  }
  // A new stream gets the whole current roster instead.
  RosterUpdate full = Decode(store.NextUpdate(0));
  EXPECT_TRUE(full.full());
  EXPECT_EQ(full.version(), 2u);
  EXPECT_THAT(Uuids(full), UnorderedElementsAre(Uuid(1), Uuid(2), Uuid(4)));
  EXPECT_EQ(store.Lookup(Uuid(3)), std::nullopt);
}

TEST(RosterStoreTest, UpsertPublishesAChangedUserOnly) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2)}, kT0).ok());
  RosterChange same = store.Upsert(MakeUser(1), kT0 + absl::Seconds(1));
  EXPECT_FALSE(same.changed);
  EXPECT_EQ(store.version(), 1u);
  RosterChange blocked = store.Upsert(MakeUser(1, 11ull << 30, /*active=*/false), kT0 + absl::Seconds(2));
  EXPECT_TRUE(blocked.changed);
  EXPECT_EQ(blocked.version, 2u);
  RosterUpdate delta = Decode(store.NextUpdate(1));
  ASSERT_EQ(delta.upserts_size(), 1);
  EXPECT_EQ(delta.upserts(0).uuid(), Uuid(1));
  EXPECT_FALSE(delta.upserts(0).is_active());
  EXPECT_FALSE(store.Lookup(Uuid(1))->is_active());
  EXPECT_EQ(store.Upsert(User(), kT0).changed, false);  // no uuid: ignored
}

TEST(RosterStoreTest, AListReadBeforeAPatchAnswerDoesNotUndoIt) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2)}, kT0).ok());
  // The applier's PATCH answer at T0+10s blocks user 1.
  store.Upsert(MakeUser(1, 11ull << 30, false), kT0 + absl::Seconds(10));
  // A list whose read started at T0+5s still has the old user 1 and lacks user 1... or has it:
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2, 7)}, kT0 + absl::Seconds(5)).ok());
  EXPECT_FALSE(store.Lookup(Uuid(1))->is_active());
  EXPECT_EQ(store.Lookup(Uuid(2))->current_usage_bytes(), 7u);
  ASSERT_TRUE(store.ReplaceAll({MakeUser(2, 7)}, kT0 + absl::Seconds(6)).ok());
  EXPECT_TRUE(store.Lookup(Uuid(1)).has_value());  // not removed by the older list either
  // A list read after the PATCH wins.
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1, 0, true), MakeUser(2, 7)}, kT0 + absl::Seconds(11)).ok());
  EXPECT_TRUE(store.Lookup(Uuid(1))->is_active());
}

TEST(RosterStoreTest, GarbageListsChangeNothing) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0).ok());
  absl::StatusOr<RosterChange> change = store.ReplaceAll({MakeUser(2), MakeUser(2)}, kT0 + absl::Seconds(1));
  EXPECT_EQ(change.status().code(), absl::StatusCode::kInvalidArgument);
  User nameless = MakeUser(3);
  nameless.clear_uuid();
  change = store.ReplaceAll({nameless}, kT0 + absl::Seconds(2));
  EXPECT_EQ(change.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.version(), 1u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.fetched_at(), kT0);
}

TEST(RosterStoreTest, AStreamBehindTheHistoryGetsAFullUpdate) {
  RosterStoreOptions options;
  options.history_max_updates = 2;
  RosterStore store(options);
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0).ok());
  for (int i = 1; i <= 4; ++i) store.Upsert(MakeUser(1, i), kT0 + absl::Seconds(i));
  ASSERT_EQ(store.version(), 5u);
  RosterUpdate behind = Decode(store.NextUpdate(1));  // needs 2, only 4 and 5 are kept
  EXPECT_TRUE(behind.full());
  EXPECT_EQ(behind.version(), 5u);
  RosterUpdate next = Decode(store.NextUpdate(3));
  EXPECT_FALSE(next.full());
  EXPECT_EQ(next.version(), 4u);
}

TEST(RosterStoreTest, ADeltaTooBigForTheHistoryMeansFullUpdates) {
  RosterStoreOptions options;
  options.history_max_bytes = 2000;
  RosterStore store(options);
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0).ok());
  std::vector<User> many;
  for (int i = 1; i <= 20; ++i) many.push_back(MakeUser(i));
  ASSERT_TRUE(store.ReplaceAll(many, kT0 + absl::Seconds(1)).ok());
  RosterUpdate update = Decode(store.NextUpdate(1));
  EXPECT_TRUE(update.full());
  EXPECT_EQ(update.upserts_size(), 20);
}

class RecordingWatcher : public RosterWatcher {
 public:
  void OnRosterChanged(uint64_t version) override { versions.push_back(version); }
  std::vector<uint64_t> versions;
};

TEST(RosterStoreTest, WatchersHearEveryNewVersionUntilRemoved) {
  RosterStore store;
  RecordingWatcher watcher;
  store.AddWatcher(&watcher);
  EXPECT_EQ(store.watcher_count(), 1u);
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0).ok());
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0 + absl::Seconds(1)).ok());  // unchanged
  store.Upsert(MakeUser(1, 5), kT0 + absl::Seconds(2));
  store.RemoveWatcher(&watcher);
  store.Upsert(MakeUser(1, 6), kT0 + absl::Seconds(3));
  EXPECT_THAT(watcher.versions, ElementsAre(1u, 2u));
  EXPECT_EQ(store.watcher_count(), 0u);
}

TEST(RosterStoreTest, SnapshotHasEveryUserVersionAndFetchTime) {
  RosterStore store;
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2, 99)}, kT0).ok());
  RosterSnapshot snapshot;
  ASSERT_TRUE(snapshot.ParseFromString(store.EncodeSnapshot().Flatten()));
  EXPECT_EQ(snapshot.version(), 1u);
  EXPECT_EQ(FromProtoTimestamp(snapshot.fetched_at()), kT0);
  ASSERT_EQ(snapshot.users_size(), 2);
  std::map<std::string, User> by_uuid;
  for (const User& user : snapshot.users()) by_uuid[user.uuid()] = user;
  EXPECT_EQ(by_uuid[Uuid(2)].SerializeAsString(), MakeUser(2, 99).SerializeAsString());
  // Before the first read: an empty snapshot.
  RosterStore empty;
  ASSERT_TRUE(snapshot.ParseFromString(empty.EncodeSnapshot().Flatten()));
  EXPECT_EQ(snapshot.users_size(), 0);
  EXPECT_EQ(snapshot.version(), 0u);
}

// A stream that applies every update it is handed ends up with exactly the
// store's roster, whatever sequence of reads and PATCH answers happened.
TEST(RosterStoreTest, FollowingTheUpdatesReproducesTheRoster) {
  RosterStoreOptions options;
  options.buckets = 7;
  options.history_max_updates = 5;
  RosterStore store(options);
  std::mt19937 rng(1234);
  std::map<std::string, std::string> follower;  // uuid -> serialized user
  uint64_t follower_version = 0;
  absl::Time now = kT0;
  auto follow = [&] {
    while (auto next = store.NextUpdate(follower_version)) {
      RosterUpdate update = Decode(next);
      if (update.full()) follower.clear();
      for (const User& user : update.upserts()) follower[user.uuid()] = user.SerializeAsString();
      for (const std::string& uuid : update.removed_uuids()) follower.erase(uuid);
      follower_version = update.version();
    }
  };
  std::map<std::string, User> model;
  for (int round = 0; round < 200; ++round) {
    now += absl::Seconds(1);
    if (rng() % 3 == 0) {
      std::vector<User> list;
      model.clear();
      for (int i = 0; i < 60; ++i) {
        if (rng() % 4 == 0) continue;
        User user = MakeUser(i, rng() % 3);
        model[user.uuid()] = user;
        list.push_back(user);
      }
      ASSERT_TRUE(store.ReplaceAll(list, now).ok());
    } else {
      User user = MakeUser(static_cast<int>(rng() % 60), rng() % 5);
      store.Upsert(user, now);
      model[user.uuid()] = user;
    }
    if (rng() % 4 == 0) follow();  // sometimes far behind
  }
  follow();
  ASSERT_EQ(follower.size(), model.size());
  EXPECT_EQ(store.size(), model.size());
  for (const auto& [uuid, user] : model) {
    EXPECT_EQ(follower[uuid], user.SerializeAsString()) << uuid;
    EXPECT_EQ(store.Lookup(uuid)->SerializeAsString(), user.SerializeAsString());
  }
}

TEST(RosterStoreTest, FullUpdateSharesBucketBuffersInsteadOfCopying) {
  RosterStore store;
  std::vector<User> users;
  for (int i = 0; i < 10'000; ++i) users.push_back(MakeUser(i));
  ASSERT_TRUE(store.ReplaceAll(std::move(users), kT0).ok());
  auto full = store.NextUpdate(0);
  ASSERT_NE(full, nullptr);
  EXPECT_EQ(full->upserts, 10'000u);
  EXPECT_LE(full->message.pieces.size(), 1025u);  // header + at most one piece per bucket
  EXPECT_EQ(store.NextUpdate(0), full);           // cached for the version
  RosterUpdate update = Decode(full);
  EXPECT_EQ(update.upserts_size(), 10'000);
}

}  // namespace
}  // namespace hsync::hub
