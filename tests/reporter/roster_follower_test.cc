// RosterFollower against a SyncHub double on a real socket: full roster then
// deltas applied to MariaDB, the panel apply trigger asked once per changing
// update, reconnect after the hub restarts, and a wrong token shown clearly.
#include "reporter/roster/roster_follower.h"
#include "reporter/panel/core_sync_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "reporter/outbox/hub_channel.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/fake_hub.h"
#include "tests/support/child_process.h"

namespace hsync::reporter {
namespace {

using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::User;
using hsync::testing::ChildDb;
using hsync::testing::FakeHub;
using hsync::testing::RandomUuid;
using hsync::testing::WaitFor;
using ::testing::HasSubstr;

constexpr char kToken[] = "roster-token";

User MakeUser(const std::string& uuid, bool active = true) {
  User u;
  u.set_uuid(uuid);
  u.set_name("n");
  u.set_usage_limit_bytes(uint64_t{10} << 30);
  u.set_package_days(30);
  u.set_mode("no_reset");
  u.set_last_online("0001-01-01 00:00:00");
  u.set_enable(active);
  u.set_is_active(active);
  u.set_lang("en");
  return u;
}

class RosterFollowerTest : public ::testing::Test {
 protected:
  RosterFollowerTest() : child_("fol"), store_(child_.state_db(), false) {
    EXPECT_TRUE(store_.EnsureSchema(child_.conn()).ok());
    RosterApplyOptions options;
    options.panel_database = child_.panel_db();
    options.core_changes = &queue_;
    applier_ = std::make_unique<RosterApplier>(&store_, options);
  }

  std::unique_ptr<RosterFollower> MakeFollower(const std::string& address, const std::string& token,
                                               CoreSyncer* syncer = nullptr) {
    HubConfig hub;
    hub.address = address;
    hub.plaintext = true;
    RosterFollowerOptions options;
    options.node_id = "child-1";
    options.token = token;
    options.retry_initial = absl::Milliseconds(50);
    options.retry_max = absl::Milliseconds(300);
    options.panel_database = child_.panel_db();
    options.state = &store_;
    return std::make_unique<RosterFollower>(MakeHubChannel(hub), child_.Options(), applier_.get(),
                                            syncer, &board_, options);
  }

  bool HasUser(const std::string& uuid) { return child_.Column(uuid, "id").has_value(); }
  std::string Enable(const std::string& uuid) { return child_.Column(uuid, "enable").value_or("?"); }

  ChildDb child_;
  StateStore store_;
  CoreSyncQueue queue_{&store_, child_.panel_db()};
  std::unique_ptr<RosterApplier> applier_;
  StatusBoard board_;
};

TEST_F(RosterFollowerTest, AppliesTheFullRosterThenEveryDelta) {
  auto hub = FakeHub::Start(kToken);
  const std::string a = RandomUuid(), b = RandomUuid();
  RosterUpdate full;
  full.set_version(1);
  full.set_full(true);
  *full.add_upserts() = MakeUser(a);
  *full.add_upserts() = MakeUser(b);
  hub->SetRoster(full);
  ApplyTriggerOptions trigger_options;
  trigger_options.command = "true";
  trigger_options.debounce = absl::Milliseconds(10);
  ApplyTrigger trigger(trigger_options, child_.Options(), &queue_, &board_);
  trigger.Start();
  // No panel API here: every recorded change counts as synced at once.
  CoreSyncer syncer(child_.Options(), &queue_, std::make_unique<NoCoreSyncClient>(), &trigger,
                    &board_, CoreSyncerOptions{});
  syncer.Start();
  auto follower = MakeFollower(hub->address(), kToken, &syncer);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return HasUser(a) && HasUser(b); }, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_stream_open(); }, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_runs() == 1; }, absl::Seconds(5)));

  RosterUpdate block;
  block.set_version(2);
  *block.add_upserts() = MakeUser(a, /*active=*/false);
  const absl::Time sent = absl::Now();
  hub->Broadcast(block);
  ASSERT_TRUE(WaitFor([&] { return Enable(a) == "0"; }, absl::Seconds(5)));
  const absl::Duration latency = absl::Now() - sent;
  std::cout << "block applied " << absl::FormatDuration(latency) << " after the hub sent it\n";
  EXPECT_LT(latency, absl::Seconds(2));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().apply_runs() == 2; }, absl::Seconds(5)));

  RosterUpdate unchanged;
  unchanged.set_version(3);
  *unchanged.add_upserts() = MakeUser(a, false);
  hub->Broadcast(unchanged);
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 3; }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(board_.Snapshot().apply_runs(), 2u);  // nothing changed: no apply

  auto status = board_.Snapshot();
  EXPECT_EQ(status.users_created(), 2u);
  EXPECT_EQ(status.users_updated(), 1u);
  EXPECT_GT(status.roster_applied_at().seconds(), 0);
  follower->Stop();
  EXPECT_FALSE(board_.Snapshot().roster_stream_open());
}

TEST_F(RosterFollowerTest, ReconnectsAfterTheHubRestartsAndAppliesTheNewFullRoster) {
  auto hub = FakeHub::Start(kToken);
  const int port = hub->port();
  const std::string a = RandomUuid(), b = RandomUuid();
  RosterUpdate full;
  full.set_version(1);
  full.set_full(true);
  *full.add_upserts() = MakeUser(a);
  hub->SetRoster(full);
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return HasUser(a); }, absl::Seconds(10)));
  hub->Shutdown();
  hub.reset();
  ASSERT_TRUE(WaitFor([&] { return !board_.Snapshot().roster_stream_open(); }, absl::Seconds(5)));
  // While the hub was away, a was blocked and b added on the parent.
  auto again = FakeHub::Start(kToken, port);
  ASSERT_NE(again, nullptr);
  RosterUpdate full2;
  full2.set_version(7);
  full2.set_full(true);
  *full2.add_upserts() = MakeUser(a, false);
  *full2.add_upserts() = MakeUser(b);
  again->SetRoster(full2);
  ASSERT_TRUE(WaitFor([&] { return HasUser(b) && Enable(a) == "0"; }, absl::Seconds(20)));
  EXPECT_EQ(board_.Snapshot().roster_version_applied(), 7u);
}

TEST_F(RosterFollowerTest, ARefusedUserIsSkippedTheStreamGoesOnAndTheNextFullRosterRetriesIt) {
  const std::string a = RandomUuid(), refused = RandomUuid(), c = RandomUuid();
  child_.Exec(absl::StrCat("CREATE TRIGGER `", child_.panel_db(), "`.refuse_one BEFORE INSERT ON ",
                           child_.UserTable(), " FOR EACH ROW IF NEW.uuid = '", refused,
                           "' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test';"
                           " END IF"));
  auto hub = FakeHub::Start(kToken);
  const int port = hub->port();
  RosterUpdate full;
  full.set_version(1);
  full.set_full(true);
  for (const auto& uuid : {a, refused, c}) *full.add_upserts() = MakeUser(uuid);
  hub->SetRoster(full);
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 1; }, absl::Seconds(10)))
      << board_.Snapshot().last_error();
  EXPECT_TRUE(HasUser(a));
  EXPECT_TRUE(HasUser(c));
  EXPECT_FALSE(HasUser(refused));
  auto status = board_.Snapshot();
  ASSERT_EQ(status.skipped_users_size(), 1);
  EXPECT_EQ(status.skipped_users(0).uuid(), refused);
  EXPECT_THAT(status.skipped_users(0).reason(), HasSubstr("refused by the test"));
  EXPECT_TRUE(status.roster_stream_open());

  // A delta that does not carry it keeps it skipped; the stream stays open.
  RosterUpdate block;
  block.set_version(2);
  *block.add_upserts() = MakeUser(a, false);
  hub->Broadcast(block);
  ASSERT_TRUE(WaitFor([&] { return Enable(a) == "0"; }, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 2; }, absl::Seconds(5)));
  EXPECT_EQ(board_.Snapshot().skipped_users_size(), 1);

  // The database accepts it now; the next full roster (after a reconnect) creates it.
  child_.Exec(absl::StrCat("DROP TRIGGER `", child_.panel_db(), "`.refuse_one"));
  hub->Shutdown();
  hub.reset();
  auto again = FakeHub::Start(kToken, port);
  ASSERT_NE(again, nullptr);
  full.set_version(3);
  *full.mutable_upserts(0) = MakeUser(a, false);
  again->SetRoster(full);
  ASSERT_TRUE(WaitFor([&] { return HasUser(refused); }, absl::Seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().skipped_users_size() == 0; }, absl::Seconds(5)));
}

TEST_F(RosterFollowerTest, ADeltaRemovingEveryoneIsHeldAndShownInStatus) {
  const std::string a = RandomUuid(), b = RandomUuid();
  auto hub = FakeHub::Start(kToken);
  RosterUpdate full;
  full.set_version(1);
  full.set_full(true);
  *full.add_upserts() = MakeUser(a);
  *full.add_upserts() = MakeUser(b);
  hub->SetRoster(full);
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return HasUser(a) && HasUser(b); }, absl::Seconds(10)));
  RosterUpdate gone;
  gone.set_version(2);
  gone.add_removed_uuids(a);
  gone.add_removed_uuids(b);
  hub->Broadcast(gone);
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().held_removals() == 2; }, absl::Seconds(5)));
  auto status = board_.Snapshot();
  EXPECT_EQ(status.guard_trips(), 1u);
  EXPECT_THAT(status.held_removals_reason(), HasSubstr("empty"));
  EXPECT_GT(status.held_removals_since().seconds(), 0);
  EXPECT_EQ(Enable(a), "1");
  EXPECT_EQ(Enable(b), "1");
}

TEST_F(RosterFollowerTest, WrongTokenIsAClearErrorAndAppliesNothing) {
  auto hub = FakeHub::Start(kToken);
  RosterUpdate full;
  full.set_version(1);
  full.set_full(true);
  const std::string a = RandomUuid();
  *full.add_upserts() = MakeUser(a);
  hub->SetRoster(full);
  auto follower = MakeFollower(hub->address(), "not-the-token");
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return hub->unauthenticated_calls() >= 2; }, absl::Seconds(10)));
  follower->Stop();
  EXPECT_FALSE(HasUser(a));
  EXPECT_THAT(board_.Snapshot().last_error(), HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(board_.Snapshot().last_error(), HasSubstr("token"));
}

RosterUpdate Chunk(uint64_t version, uint64_t epoch, uint32_t index, uint32_t count,
                   const std::vector<std::string>& uuids) {
  RosterUpdate chunk;
  chunk.set_version(version);
  chunk.set_full(true);
  chunk.set_roster_epoch(epoch);
  chunk.set_chunk_index(index);
  chunk.set_chunk_count(count);
  for (const auto& uuid : uuids) *chunk.add_upserts() = MakeUser(uuid);
  return chunk;
}

TEST_F(RosterFollowerTest, AChunkedFullRosterRemovesAbsentUsersOnlyAfterItsLastChunk) {
  auto hub = FakeHub::Start(kToken);
  const std::string gone = RandomUuid(), kept = RandomUuid(), c = RandomUuid(), d = RandomUuid();
  hub->SetRoster(Chunk(1, 5, 0, 1, {gone, kept}));
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return HasUser(gone) && HasUser(kept); }, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 1; },
                      absl::Seconds(5)));
  // Version 2 in three chunks: `gone` is in none of them.
  hub->Broadcast(Chunk(2, 5, 0, 3, {kept, c}));
  hub->Broadcast(Chunk(2, 5, 1, 3, {d}));
  ASSERT_TRUE(WaitFor([&] { return HasUser(c) && HasUser(d); }, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_full_chunks_done() == 2; },
                      absl::Seconds(5)));
  EXPECT_EQ(Enable(gone), "1");  // two chunks of three: nobody is absent yet
  EXPECT_EQ(board_.Snapshot().roster_full_in_progress_version(), 2u);
  EXPECT_EQ(board_.Snapshot().roster_version_applied(), 1u);
  hub->Broadcast(Chunk(2, 5, 2, 3, {}));
  ASSERT_TRUE(WaitFor([&] { return Enable(gone) == "0"; }, absl::Seconds(10)));
  EXPECT_EQ(Enable(kept), "1");
  EXPECT_EQ(Enable(c), "1");
  EXPECT_EQ(Enable(d), "1");
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 2; },
                      absl::Seconds(5)));
  auto status = board_.Snapshot();
  EXPECT_EQ(status.roster_full_applied(), 2u);
  EXPECT_EQ(status.roster_chunks_applied(), 4u);
  EXPECT_EQ(status.roster_full_in_progress_version(), 0u);
  EXPECT_EQ(status.users_disabled(), 1u);
  EXPECT_EQ(status.roster_epoch(), 5u);
  follower->Stop();
}

TEST_F(RosterFollowerTest, AnEmptyChunkedRosterTripsTheGuardOnTheWhole) {
  auto hub = FakeHub::Start(kToken);
  std::vector<std::string> users;
  for (int i = 0; i < 4; ++i) users.push_back(RandomUuid());
  hub->SetRoster(Chunk(1, 5, 0, 1, users));
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 1; },
                      absl::Seconds(10)));
  // Every chunk of version 2 is empty: each alone removes nobody, the whole
  // would remove everyone.
  for (uint32_t i = 0; i < 3; ++i) hub->Broadcast(Chunk(2, 5, i, 3, {}));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().guard_trips() == 1; }, absl::Seconds(10)));
  for (const auto& uuid : users) EXPECT_EQ(Enable(uuid), "1");
  EXPECT_EQ(board_.Snapshot().held_removals(), 4u);
  follower->Stop();
}

TEST_F(RosterFollowerTest, ABrokenChunkedRosterIsResumedAtTheNextChunk) {
  auto hub = FakeHub::Start(kToken);
  const std::string gone = RandomUuid(), a = RandomUuid(), b = RandomUuid();
  hub->SetRoster(Chunk(1, 9, 0, 1, {gone, a}));
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 1; },
                      absl::Seconds(10)));
  hub->SetRoster(Chunk(3, 9, 0, 2, {a}));  // what a new stream would start with
  hub->Broadcast(Chunk(3, 9, 0, 2, {a}));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_full_chunks_done() == 1; },
                      absl::Seconds(10)));
  hub->BreakWatchers();
  ASSERT_TRUE(WaitFor([&] { return hub->roster_requests().size() == 2 && hub->open_watchers() == 1; },
                      absl::Seconds(10)));
  const auto request = hub->roster_requests().back();
  EXPECT_TRUE(request.accepts_chunks());
  EXPECT_EQ(request.roster_epoch(), 9u);
  EXPECT_EQ(request.resume_full_version(), 3u);
  EXPECT_EQ(request.resume_next_chunk(), 1u);
  // The double sent chunk 0 again first (SetRoster): the reporter starts the
  // roster over with it; then the hub "resumes" with chunk 1.
  hub->Broadcast(Chunk(3, 9, 1, 2, {b}));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 3; },
                      absl::Seconds(10)));
  EXPECT_TRUE(HasUser(b));
  EXPECT_EQ(Enable(gone), "0");
  EXPECT_EQ(Enable(a), "1");
  follower->Stop();
}

TEST_F(RosterFollowerTest, AResumedStreamGoesOnWithoutStartingOver) {
  auto hub = FakeHub::Start(kToken);
  const std::string gone = RandomUuid(), a = RandomUuid(), b = RandomUuid();
  hub->SetRoster(Chunk(1, 9, 0, 1, {gone, a}));
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 1; },
                      absl::Seconds(10)));
  hub->SetRoster(Chunk(3, 9, 1, 2, {b}));  // a hub that resumes at chunk 1
  hub->Broadcast(Chunk(3, 9, 0, 2, {a}));
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_full_chunks_done() == 1; },
                      absl::Seconds(10)));
  hub->BreakWatchers();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 3; },
                      absl::Seconds(10)));
  EXPECT_EQ(board_.Snapshot().roster_full_resumes(), 1u);
  EXPECT_TRUE(HasUser(b));
  EXPECT_EQ(Enable(gone), "0");  // `a` (chunk 0, before the break) still counts as present
  EXPECT_EQ(Enable(a), "1");
  follower->Stop();
}

TEST_F(RosterFollowerTest, AReconnectAsksForTheDeltasSinceTheVersionHeldAlsoAfterARestart) {
  auto hub = FakeHub::Start(kToken);
  const std::string a = RandomUuid();
  RosterUpdate full = Chunk(3, 11, 0, 0, {a});  // unchunked (chunk_count 0)
  hub->SetRoster(full);
  auto follower = MakeFollower(hub->address(), kToken);
  follower->Start();
  ASSERT_TRUE(WaitFor([&] { return board_.Snapshot().roster_version_applied() == 3; },
                      absl::Seconds(10)));
  follower->Stop();
  // Restarted: the position comes from the state schema.
  auto hub2 = FakeHub::Start(kToken);
  RosterUpdate delta;
  delta.set_version(4);
  delta.set_roster_epoch(11);
  *delta.add_upserts() = MakeUser(a, /*active=*/false);
  auto again = MakeFollower(hub2->address(), kToken);
  again->Start();
  ASSERT_TRUE(WaitFor([&] { return hub2->open_watchers() == 1; }, absl::Seconds(10)));
  const auto request = hub2->roster_requests().back();
  EXPECT_EQ(request.roster_epoch(), 11u);
  EXPECT_EQ(request.have_version(), 3u);
  EXPECT_EQ(request.resume_full_version(), 0u);
  hub2->Broadcast(delta);
  ASSERT_TRUE(WaitFor([&] { return Enable(a) == "0"; }, absl::Seconds(10)));
  EXPECT_EQ(board_.Snapshot().roster_reconnects_with_deltas(), 1u);
  // A delta that does not follow the version held ends the stream; the next
  // one asks for a full roster.
  RosterUpdate skipping;
  skipping.set_version(9);
  skipping.set_roster_epoch(11);
  *skipping.add_upserts() = MakeUser(a, /*active=*/true);
  hub2->Broadcast(skipping);
  ASSERT_TRUE(WaitFor([&] { return hub2->roster_requests().size() >= 2; }, absl::Seconds(10)));
  EXPECT_EQ(hub2->roster_requests().back().have_version(), 0u);
  EXPECT_EQ(Enable(a), "0");  // the gap was not applied
  again->Stop();
}

}  // namespace
}  // namespace hsync::reporter
