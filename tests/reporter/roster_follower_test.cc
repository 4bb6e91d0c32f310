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

}  // namespace
}  // namespace hsync::reporter
