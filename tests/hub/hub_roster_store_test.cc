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

// Every change published at once (the tests of diffs and history).
RosterStoreOptions AtOnce() {
  RosterStoreOptions options;
  options.usage_interval = absl::ZeroDuration();
  return options;
}

RosterStoreOptions Coalescing(absl::Duration interval) {
  RosterStoreOptions options;
  options.usage_interval = interval;
  return options;
}

TEST(RosterStoreTest, NothingToSendBeforeTheFirstRead) {
  RosterStore store(AtOnce());
  EXPECT_FALSE(store.loaded());
  EXPECT_EQ(store.NextUpdate(0), nullptr);
  EXPECT_EQ(store.FullUpdate(), nullptr);
}

TEST(RosterStoreTest, AKeptUserIsNotRemovedAndANeverSeenOneStaysAbsent) {
  RosterStore store(AtOnce());
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
  RosterStore store(AtOnce());
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
  RosterStore store(AtOnce());
  ASSERT_TRUE(store.ReplaceAll({}, kT0).ok());
  EXPECT_TRUE(store.loaded());
  EXPECT_EQ(store.version(), 1u);
  RosterUpdate full = Decode(store.NextUpdate(0));
  EXPECT_TRUE(full.full());
  EXPECT_EQ(full.upserts_size(), 0);
}

TEST(RosterStoreTest, UnchangedReadPublishesNothing) {
  RosterStore store(AtOnce());
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2)}, kT0).ok());
  absl::StatusOr<RosterChange> change =
      store.ReplaceAll({MakeUser(2), MakeUser(1)}, kT0 + absl::Seconds(30));
  ASSERT_TRUE(change.ok());
  EXPECT_FALSE(change->changed);
  EXPECT_EQ(store.version(), 1u);
  EXPECT_EQ(store.fetched_at(), kT0 + absl::Seconds(30));
}

TEST(RosterStoreTest, ChangesBecomeOneDeltaWithUpsertsAndRemovals) {
  RosterStore store(AtOnce());
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
  RosterStore store(AtOnce());
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
  RosterStore store(AtOnce());
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
  RosterStore store(AtOnce());
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
  RosterStoreOptions options = AtOnce();
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
  RosterStoreOptions options = AtOnce();
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
  RosterStore store(AtOnce());
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
  RosterStore store(AtOnce());
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
  RosterStoreOptions options = AtOnce();
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
  RosterStore store(AtOnce());
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

TEST(RosterStoreUsageTest, UsageOnlyChangesWaitForTheIntervalThenGoOutTogether) {
  RosterStore store(Coalescing(absl::Seconds(60)));
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2), MakeUser(3)}, kT0).ok());
  ASSERT_EQ(store.version(), 1u);
  // Usage of two users changes (PATCH answers): nothing goes out yet, but the
  // hub itself sees the latest usage.
  EXPECT_FALSE(store.Upsert(MakeUser(1, 5), kT0 + absl::Seconds(1)).changed);
  EXPECT_FALSE(store.Upsert(MakeUser(2, 7), kT0 + absl::Seconds(10)).changed);
  EXPECT_FALSE(store.Upsert(MakeUser(1, 6), kT0 + absl::Seconds(20)).changed);
  EXPECT_EQ(store.version(), 1u);
  EXPECT_EQ(store.Lookup(Uuid(1))->current_usage_bytes(), 6u);
  EXPECT_EQ(store.Stats().usage_pending, 2u);
  EXPECT_FALSE(store.FlushDueUsage(kT0 + absl::Seconds(60)).changed);  // 59 s after the first
  // One interval after the first pending change: one delta with both users,
  // each at its latest usage.
  RosterChange flushed = store.FlushDueUsage(kT0 + absl::Seconds(61));
  ASSERT_TRUE(flushed.changed);
  EXPECT_EQ(store.version(), 2u);
  RosterUpdate delta = Decode(store.NextUpdate(1));
  EXPECT_FALSE(delta.full());
  EXPECT_EQ(delta.upserts_size(), 0);  // the usage fields only
  ASSERT_EQ(delta.usage_updates_size(), 2);
  for (const auto& usage : delta.usage_updates()) {
    EXPECT_EQ(usage.current_usage_bytes(), usage.uuid() == Uuid(1) ? 6u : 7u);
    EXPECT_EQ(usage.last_online(), "0001-01-01 00:00:00");
  }
  EXPECT_LT(delta.ByteSizeLong(), 200u);
  // A full roster carries the latest state.
  EXPECT_EQ(Decode(store.FullUpdate()).upserts_size(), 3);
  EXPECT_EQ(store.Lookup(Uuid(2))->current_usage_bytes(), 7u);
  EXPECT_EQ(store.Stats().usage_pending, 0u);
  EXPECT_EQ(store.Stats().usage_flushes, 1u);
  // The next change of a user waits a whole interval after that flush: at
  // most one usage update per user per interval.
  EXPECT_FALSE(store.Upsert(MakeUser(1, 9), kT0 + absl::Seconds(62)).changed);
  EXPECT_FALSE(store.FlushDueUsage(kT0 + absl::Seconds(120)).changed);
  EXPECT_TRUE(store.FlushDueUsage(kT0 + absl::Seconds(122)).changed);
  EXPECT_EQ(store.version(), 3u);
  EXPECT_EQ(Decode(store.NextUpdate(2)).usage_updates(0).current_usage_bytes(), 9u);
}

TEST(RosterStoreUsageTest, AccessChangesGoOutAtOnceWithTheLatestUsage) {
  RosterStore store(Coalescing(absl::Seconds(60)));
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1), MakeUser(2)}, kT0).ok());
  EXPECT_FALSE(store.Upsert(MakeUser(1, 5), kT0 + absl::Seconds(1)).changed);
  // is_active flips together with usage (the user ran out of quota): at once.
  RosterChange blocked = store.Upsert(MakeUser(1, 8, /*active=*/false), kT0 + absl::Seconds(2));
  ASSERT_TRUE(blocked.changed);
  RosterUpdate delta = Decode(store.NextUpdate(1));
  ASSERT_EQ(delta.upserts_size(), 1);
  EXPECT_FALSE(delta.upserts(0).is_active());
  EXPECT_EQ(delta.upserts(0).current_usage_bytes(), 8u);
  EXPECT_EQ(store.Stats().usage_pending, 0u);  // nothing left to flush for it

  // A quota change read from the parent's list goes at once too; a usage-only
  // change in the same read waits.
  User quota = MakeUser(2, 3);
  quota.set_usage_limit_bytes(uint64_t{20} << 30);
  User usage = MakeUser(1, 9, /*active=*/false);
  ASSERT_TRUE(store.ReplaceAll({usage, quota}, kT0 + absl::Seconds(5)).ok());
  EXPECT_EQ(store.version(), 3u);
  RosterUpdate read = Decode(store.NextUpdate(2));
  EXPECT_THAT(Uuids(read), ElementsAre(Uuid(2)));
  EXPECT_EQ(store.Stats().usage_pending, 1u);
  EXPECT_EQ(store.Lookup(Uuid(1))->current_usage_bytes(), 9u);
  // Creation and removal are never held either.
  ASSERT_TRUE(store.ReplaceAll({usage, quota, MakeUser(3)}, kT0 + absl::Seconds(6)).ok());
  EXPECT_THAT(Uuids(Decode(store.NextUpdate(3))), ElementsAre(Uuid(3)));
  ASSERT_TRUE(store.ReplaceAll({quota, MakeUser(3)}, kT0 + absl::Seconds(7)).ok());
  EXPECT_THAT(Decode(store.NextUpdate(4)).removed_uuids(), ElementsAre(Uuid(1)));
  EXPECT_EQ(store.Stats().usage_pending, 0u);  // the removed user's usage is dropped
}

TEST(RosterStoreUsageTest, UsageThatGoesDownGoesOutAtOnce) {
  // A reset, renewal or admin edit on the parent lowers usage with nothing
  // else changed: children must see it at once (their counters follow it).
  RosterStore store(Coalescing(absl::Seconds(60)));
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1, 7)}, kT0).ok());
  EXPECT_FALSE(store.Upsert(MakeUser(1, 9), kT0 + absl::Seconds(1)).changed);  // growth waits
  RosterChange reset = store.Upsert(MakeUser(1, 0), kT0 + absl::Seconds(2));
  ASSERT_TRUE(reset.changed);
  RosterUpdate delta = Decode(store.NextUpdate(1));
  ASSERT_EQ(delta.upserts_size(), 1);
  EXPECT_EQ(delta.upserts(0).current_usage_bytes(), 0u);
  EXPECT_EQ(store.Stats().usage_pending, 0u);
  // Read from the parent's list, the same holds.
  EXPECT_FALSE(store.ReplaceAll({MakeUser(1, 4)}, kT0 + absl::Seconds(3)).value().changed);
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1, 1)}, kT0 + absl::Seconds(4)).value().changed);
  EXPECT_EQ(Decode(store.NextUpdate(store.version() - 1)).upserts(0).current_usage_bytes(), 1u);
}

TEST(RosterStoreUsageTest, AZeroIntervalPublishesUsageAtOnce) {
  RosterStore store(AtOnce());
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0).ok());
  EXPECT_TRUE(store.Upsert(MakeUser(1, 5), kT0 + absl::Seconds(1)).changed);
  EXPECT_EQ(store.version(), 2u);
}

TEST(RosterStoreUsageTest, AReplacementFedUserByUserKeepsOnlyTheChanges) {
  RosterStore store(AtOnce());
  std::vector<User> users;
  for (int i = 0; i < 100; ++i) users.push_back(MakeUser(i));
  ASSERT_TRUE(store.ReplaceAll(users, kT0).ok());
  auto replacement = store.BeginReplace(kT0 + absl::Seconds(1));
  for (int i = 0; i < 100; ++i) replacement->Add(i == 7 ? MakeUser(i, 1, false) : MakeUser(i));
  EXPECT_EQ(replacement->added(), 100u);
  EXPECT_EQ(store.version(), 1u);  // nothing before Commit
  absl::StatusOr<RosterChange> change = replacement->Commit();
  ASSERT_TRUE(change.ok());
  EXPECT_EQ(change->upserts, 1u);
  EXPECT_EQ(change->removals, 0u);
  // A read that fails midway is dropped uncommitted: nothing changes.
  auto failed = store.BeginReplace(kT0 + absl::Seconds(2));
  failed->Add(MakeUser(1, 0, false));
  failed.reset();
  EXPECT_EQ(store.version(), 2u);
  EXPECT_TRUE(store.Lookup(Uuid(1))->is_active());
  // A repeated uuid fails the read.
  auto twice = store.BeginReplace(kT0 + absl::Seconds(3));
  twice->Add(MakeUser(1));
  twice->Add(MakeUser(1));
  EXPECT_EQ(twice->Commit().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RosterStoreVersionTest, DeltasAfterAHeldVersionOfThisRunOnlyWhileTheHistoryHasThem) {
  RosterStoreOptions options = AtOnce();
  options.epoch = 42;
  RosterStore store(options);
  EXPECT_EQ(store.epoch(), 42u);
  EXPECT_FALSE(store.HasDeltasAfter(1));  // not loaded
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0).ok());
  for (int v = 2; v <= 5; ++v) store.Upsert(MakeUser(1, v), kT0 + absl::Seconds(v));
  EXPECT_TRUE(store.HasDeltasAfter(1));
  EXPECT_TRUE(store.HasDeltasAfter(5));   // up to date
  EXPECT_FALSE(store.HasDeltasAfter(6));  // a version this run never had
  EXPECT_FALSE(store.HasDeltasAfter(0));
  RosterUpdate delta = Decode(store.NextUpdate(3));
  EXPECT_EQ(delta.version(), 4u);
  EXPECT_EQ(delta.roster_epoch(), 42u);
  EXPECT_EQ(Decode(store.FullUpdate()).roster_epoch(), 42u);
  // A random epoch otherwise, different per run.
  EXPECT_NE(RosterStore().epoch(), RosterStore().epoch());
}

TEST(RosterStoreVersionTest, TheHistoryIsBoundedByBytesNotByCount) {
  RosterStoreOptions options = AtOnce();
  options.history_max_bytes = 100'000;
  RosterStore store(options);
  ASSERT_TRUE(store.ReplaceAll({MakeUser(1)}, kT0).ok());
  for (int v = 2; v <= 1000; ++v) store.Upsert(MakeUser(1, v), kT0 + absl::Seconds(v));
  RosterStoreStats stats = store.Stats();
  EXPECT_LE(stats.history_bytes, 100'000u);
  EXPECT_GT(stats.history_bytes, 90'000u);
  EXPECT_GT(stats.history_updates, 150u);  // ~500 B per delta: far more than a count cap would say
  EXPECT_EQ(stats.history_oldest_version + stats.history_updates - 1, store.version());
}

TEST(RosterStoreVersionTest, ABigChangeIsSplitIntoDeltasOfBoundedSize) {
  RosterStore store(AtOnce());
  std::vector<User> users;
  for (int i = 0; i < 5000; ++i) users.push_back(MakeUser(i));
  ASSERT_TRUE(store.ReplaceAll(users, kT0).ok());
  for (User& user : users) user.set_usage_limit_bytes(uint64_t{1} << 40);
  absl::StatusOr<RosterChange> change = store.ReplaceAll(users, kT0 + absl::Seconds(1));
  ASSERT_TRUE(change.ok());
  EXPECT_EQ(change->upserts, 5000u);
  ASSERT_GT(store.version(), 3u);  // ~2.5 MB of records: several deltas
  std::set<std::string> seen;
  for (uint64_t v = 1; v < store.version(); ++v) {
    auto encoded = store.NextUpdate(v);
    ASSERT_NE(encoded, nullptr);
    EXPECT_FALSE(encoded->full);
    EXPECT_LE(encoded->message.total_size, kMaxDeltaBytes + 1000);
    for (const auto& uuid : Uuids(Decode(encoded))) EXPECT_TRUE(seen.insert(uuid).second);
  }
  EXPECT_EQ(seen.size(), 5000u);
}

TEST(RosterStoreChunkTest, AFullSnapshotIsOneChunkPerBucketAndStaysForResume) {
  RosterStoreOptions options = AtOnce();
  options.epoch = 7;
  RosterStore store(options);
  std::vector<User> users;
  for (int i = 0; i < 1000; ++i) users.push_back(MakeUser(i));
  ASSERT_TRUE(store.ReplaceAll(users, kT0).ok());
  std::shared_ptr<const FullRosterSnapshot> snapshot = store.FullSnapshot();
  ASSERT_NE(snapshot, nullptr);
  ASSERT_EQ(snapshot->chunk_count(), 64u);
  std::set<std::string> seen;
  for (size_t i = 0; i < snapshot->chunk_count(); ++i) {
    RosterUpdate chunk;
    ASSERT_TRUE(chunk.ParseFromString(snapshot->Chunk(i).Flatten()));
    EXPECT_TRUE(chunk.full());
    EXPECT_EQ(chunk.version(), 1u);
    EXPECT_EQ(chunk.roster_epoch(), 7u);
    EXPECT_EQ(chunk.chunk_index(), i);
    EXPECT_EQ(chunk.chunk_count(), 64u);
    for (const auto& uuid : Uuids(chunk)) EXPECT_TRUE(seen.insert(uuid).second);
  }
  EXPECT_EQ(seen.size(), 1000u);
  // The roster moves on: the snapshot of version 1 is still there for a
  // stream resuming it, until a newer snapshot is made.
  store.Upsert(MakeUser(3, 0, false), kT0 + absl::Seconds(1));
  EXPECT_EQ(store.FullSnapshotAt(1), snapshot);
  EXPECT_EQ(store.FullSnapshotAt(2), nullptr);
  ASSERT_EQ(store.FullSnapshot()->version, 2u);
  EXPECT_EQ(store.FullSnapshotAt(1), nullptr);
}

}  // namespace
}  // namespace hsync::hub
