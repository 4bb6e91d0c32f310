// The roster, end to end: the real hub binary reading panelsim's user list
// and streaming it to WatchRoster clients — full first, then deltas in
// version order; nothing before the first good read; a failed or garbage
// read empties nothing; a user blocked by applied bytes is pushed at once;
// hundreds of streams on a handful of connections; a proxy's 404 in front of
// the panel concludes nothing; one unreadable user never freezes the roster.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/units.h"
#include "tests/hub/hub_harness.h"
#include "tests/hub/parent_client_test_panel.h"
#include "tests/hub/parent_client_test_proxy.h"
#include "tests/support/metrics_scrape.h"

namespace hsync::hub::testing {
namespace {

using hiddify_sync::v1::GetRosterRequest;
using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::RosterSnapshot;
using State = RosterFollower::State;
using hsync::testing::WaitFor;

class HubRosterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    panel_ = TestPanel::Start();
    ASSERT_NE(panel_, nullptr);
  }

  // `root_url`: where the parent is reached ("" = the panel itself; else a
  // proxy in front of it).
  std::unique_ptr<HubProcess> StartHub(HubSetup setup, const std::string& root_url = "") {
    setup.parent_url = root_url.empty()
                           ? panel_->runner().base_url()
                           : absl::StrCat(root_url, "/", panel_->runner().options().proxy_path);
    setup.parent_api_key = panel_->runner().api_key();
    setup.node_tokens = MakeNodeTokens(2);
    auto hub = HubProcess::Start(setup);
    EXPECT_TRUE(hub.ok()) << hub.status();
    return hub.ok() ? *std::move(hub) : nullptr;
  }

  std::unique_ptr<RosterFollower> Follow(HubProcess& hub, int node = 0) {
    if (stub_ == nullptr) stub_ = hub.Stub();
    const std::string id = absl::StrCat("node-", node);
    return std::make_unique<RosterFollower>(stub_.get(), id, hub.setup().node_tokens.at(id));
  }

  void Patch(const std::string& uuid, const std::string& body) {
    auto answer = panel_->runner().Api("PATCH", absl::StrCat("admin/user/", uuid, "/"), body);
    ASSERT_TRUE(answer.ok()) << answer.status();
    ASSERT_EQ(answer->status, 200) << answer->body;
  }

  RosterSnapshot GetRoster(HubProcess& hub) {
    grpc::ClientContext context;
    RosterSnapshot snapshot;
    grpc::Status status = hub.OperatorStub()->GetRoster(&context, GetRosterRequest(), &snapshot);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return snapshot;
  }

  std::unique_ptr<TestPanel> panel_;
  std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> stub_;
};

TEST_F(HubRosterTest, ANewStreamGetsTheFullRosterThenEveryChangeInOrder) {
  for (int i = 0; i < 5; ++i) panel_->CreateUser(TestUserUuid(i, 0x70), 10 * kBytesPerGiB);
  auto hub = StartHub(HubSetup{.poll_interval = "1s"});
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  ASSERT_TRUE(follower->WaitUntil([](const State& s) { return s.updates >= 1; }, absl::Seconds(10)));
  State first = follower->Snapshot();
  EXPECT_EQ(first.full_updates, 1);
  // The panel's own "default"-style users may exist; ours are all there.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(first.by_uuid.contains(TestUserUuid(i, 0x70)));
  EXPECT_EQ(first.by_uuid.at(TestUserUuid(0, 0x70)).usage_limit_bytes(), 10 * kBytesPerGiB);

  panel_->CreateUser(TestUserUuid(5, 0x70), kBytesPerGiB);
  Patch(TestUserUuid(1, 0x70), R"({"enable": false})");
  panel_->DeleteUser(TestUserUuid(2, 0x70));
  ASSERT_TRUE(follower->WaitUntil(
      [](const State& s) {
        return s.by_uuid.contains(TestUserUuid(5, 0x70)) && !s.by_uuid.contains(TestUserUuid(2, 0x70)) &&
               !s.by_uuid.at(TestUserUuid(1, 0x70)).enable();
      },
      absl::Seconds(10)));
  State later = follower->Snapshot();
  EXPECT_EQ(later.full_updates, 1);  // only deltas after the first message
  EXPECT_EQ(later.gaps, 0);
  EXPECT_GT(later.version, first.version);
  // The stream's copy equals what GetRoster answers.
  RosterSnapshot snapshot = GetRoster(*hub);
  EXPECT_EQ(snapshot.version(), later.version);
  ASSERT_EQ(static_cast<size_t>(snapshot.users_size()), later.by_uuid.size());
  for (const auto& user : snapshot.users()) {
    EXPECT_EQ(user.SerializeAsString(), later.by_uuid.at(user.uuid()).SerializeAsString());
  }
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->roster_watchers(), 1u);
  EXPECT_EQ(status->roster_version(), later.version);
  EXPECT_EQ(status->roster_size(), later.by_uuid.size());
  EXPECT_TRUE(status->has_roster_fetched_at());
  for (const auto& node : status->nodes()) {
    if (node.node_id() == "node-0") {
      EXPECT_TRUE(node.roster_stream_open());
      EXPECT_EQ(node.roster_version_sent(), later.version);
    }
  }
}

TEST_F(HubRosterTest, StreamsWaitForTheFirstSuccessfulRead) {
  panel_->CreateUser(TestUserUuid(0, 0x71), kBytesPerGiB);
  panel_->AddFault({{"route", "list_users"}, {"error_rate", 1.0}});
  auto hub = StartHub(HubSetup{.poll_interval = "1s"});
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(follower->Snapshot().updates, 0);  // no empty "full" roster from a failed read
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_THAT(status->last_parent_error(), ::testing::HasSubstr("list users"));
  EXPECT_EQ(status->roster_version(), 0u);
  panel_->ClearFaults();
  ASSERT_TRUE(follower->WaitUntil([](const State& s) { return s.updates >= 1; }, absl::Seconds(10)));
  State state = follower->Snapshot();
  EXPECT_EQ(state.full_updates, 1);
  EXPECT_TRUE(state.by_uuid.contains(TestUserUuid(0, 0x71)));
}

TEST_F(HubRosterTest, FailedOrGarbageReadsNeverEmptyTheRoster) {
  for (int i = 0; i < 4; ++i) panel_->CreateUser(TestUserUuid(i, 0x72), kBytesPerGiB);
  auto hub = StartHub(HubSetup{.poll_interval = "1s", .parent_timeout = "1s"});
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  ASSERT_TRUE(follower->WaitUntil([](const State& s) { return s.updates >= 1; }, absl::Seconds(10)));
  const State before = follower->Snapshot();
  for (const nlohmann::json& fault :
       {nlohmann::json{{"route", "list_users"}, {"garbage_rate", 1.0}},
        nlohmann::json{{"route", "list_users"}, {"error_rate", 1.0}, {"error_status", 502}},
        nlohmann::json{{"route", "list_users"}, {"drop_rate", 1.0}},
        nlohmann::json{{"route", "list_users"}, {"timeout_rate", 1.0}}}) {
    SCOPED_TRACE(fault.dump());
    panel_->AddFault(fault);
    absl::StatusOr<HubStatus> status = hub->Status();
    ASSERT_TRUE(status.ok());
    const std::string previous_error = status->last_parent_error();
    ASSERT_TRUE(hsync::testing::WaitFor(
        [&] {
          absl::StatusOr<HubStatus> now = hub->Status();
          return now.ok() && now->has_last_parent_error_at() &&
                 now->last_parent_error() != previous_error;
        },
        absl::Seconds(10)));
    panel_->ClearFaults();
    RosterSnapshot snapshot = GetRoster(*hub);
    EXPECT_EQ(snapshot.version(), before.version);
    EXPECT_EQ(static_cast<size_t>(snapshot.users_size()), before.users);
  }
  const State after = follower->Snapshot();
  EXPECT_EQ(after.updates, before.updates);  // nothing was published
  EXPECT_EQ(after.users, before.users);
}

TEST_F(HubRosterTest, AUserBlockedByAppliedBytesIsPushedWithoutWaitingForThePoll) {
  const std::string uuid = TestUserUuid(0, 0x73);
  panel_->CreateUser(uuid, kBytesPerGiB);  // 1 GiB quota, nothing used
  panel_->CreateUser(TestUserUuid(1, 0x73), kBytesPerGiB);
  // The list is read once at start; the next read is an hour away. Nothing is
  // due for a minute unless it is urgent.
  auto hub = StartHub(HubSetup{.max_apply_delay = "60s", .poll_interval = "1h"});
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  ASSERT_TRUE(follower->WaitUntil([&](const State& s) { return s.by_uuid.contains(uuid); },
                                  absl::Seconds(10)));
  ASSERT_TRUE(follower->Snapshot().by_uuid.at(uuid).is_active());

  SimulatedChild child("node-1", hub->setup().node_tokens.at("node-1"), hub->channel());
  const absl::Time sent = absl::Now();
  ASSERT_TRUE(child.Report({{uuid, kBytesPerGiB + 1}}).ok());
  ASSERT_TRUE(follower->WaitUntil(
      [&](const State& s) { return !s.by_uuid.at(uuid).is_active(); }, absl::Seconds(10)));
  const absl::Duration latency = absl::Now() - sent;
  EXPECT_LT(latency, absl::Seconds(5));
  const State state = follower->Snapshot();
  EXPECT_EQ(state.by_uuid.at(uuid).current_usage_bytes(), kBytesPerGiB + 1);
  EXPECT_EQ(state.full_updates, 1);
  EXPECT_EQ(state.gaps, 0);
  EXPECT_EQ(panel_->Usage(uuid), kBytesPerGiB + 1);
  std::printf("over-quota user pushed to the stream %s after the report\n",
              absl::FormatDuration(latency).c_str());
}

TEST_F(HubRosterTest, HundredsOfStreamsEachGetTheRosterAndEveryChange) {
  for (int i = 0; i < 20; ++i) panel_->CreateUser(TestUserUuid(i, 0x74), kBytesPerGiB);
  auto hub = StartHub(HubSetup{.poll_interval = "1s"});
  ASSERT_NE(hub, nullptr);
  // 300 streams over 6 connections, as if from 300 reporters.
  std::vector<std::unique_ptr<hiddify_sync::v1::SyncHub::Stub>> stubs;
  for (int c = 0; c < 6; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("hsync.test.channel", c);  // distinct channels, distinct connections
    args.SetMaxReceiveMessageSize(-1);
    stubs.push_back(hiddify_sync::v1::SyncHub::NewStub(
        grpc::CreateCustomChannel(hub->target(), grpc::InsecureChannelCredentials(), args)));
  }
  std::vector<std::unique_ptr<RosterFollower>> followers;
  for (int i = 0; i < 300; ++i) {
    followers.push_back(std::make_unique<RosterFollower>(stubs[i % stubs.size()].get(), "node-0",
                                                         hub->setup().node_tokens.at("node-0")));
  }
  for (auto& follower : followers) {
    ASSERT_TRUE(follower->WaitUntil([](const State& s) { return s.users >= 20; }, absl::Seconds(20)));
  }
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->roster_watchers(), 300u);
  panel_->CreateUser(TestUserUuid(20, 0x74), kBytesPerGiB);
  for (auto& follower : followers) {
    ASSERT_TRUE(follower->WaitUntil(
        [](const State& s) { return s.by_uuid.contains(TestUserUuid(20, 0x74)); }, absl::Seconds(20)));
    EXPECT_EQ(follower->Snapshot().gaps, 0);
  }
  followers.clear();  // cancels every stream
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] {
        absl::StatusOr<HubStatus> now = hub->Status();
        return now.ok() && now->roster_watchers() == 0;
      },
      absl::Seconds(10)));
}

TEST_F(HubRosterTest, ShutdownEndsStreamsWithUnavailableAndExitsCleanly) {
  panel_->CreateUser(TestUserUuid(0, 0x75), kBytesPerGiB);
  auto hub = StartHub(HubSetup{});
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  ASSERT_TRUE(follower->WaitUntil([](const State& s) { return s.updates >= 1; }, absl::Seconds(10)));
  const absl::Time start = absl::Now();
  absl::StatusOr<int> code = hub->Terminate();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_TRUE(follower->WaitUntil([](const State& s) { return s.done; }, absl::Seconds(5)));
  EXPECT_EQ(follower->Snapshot().status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(hub->ReadLog(), ::testing::HasSubstr("stopped cleanly"));
}

// Occurrences of `needle` in `text`.
int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(HubRosterTest, AProxyAnswering404ForEverythingPublishesNothingAndOrphansNothing) {
  const std::string a = TestUserUuid(0, 0x76), b = TestUserUuid(1, 0x76);
  panel_->CreateUser(a, 10 * kBytesPerGiB, 100, "2024-01-01");
  panel_->CreateUser(b, 10 * kBytesPerGiB, 200, "2024-01-01");
  auto proxy = FrontProxy::Start(panel_->runner().port());
  ASSERT_NE(proxy, nullptr);
  auto hub = StartHub(HubSetup{.poll_interval = "1s"}, proxy->root_url());
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  ASSERT_TRUE(follower->WaitUntil(
      [&](const State& s) { return s.by_uuid.contains(a) && s.by_uuid.contains(b); },
      absl::Seconds(10)));
  const State before = follower->Snapshot();

  // The CDN / nginx in front of the panel loses its route: 404 for everything.
  proxy->AnswerNotFound(kNginx404Html);
  SimulatedChild child("node-1", hub->setup().node_tokens.at("node-1"), hub->channel());
  ASSERT_TRUE(child.Report({{a, 1000}, {b, 2000}}).ok());
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] {
        absl::StatusOr<HubStatus> now = hub->Status();
        return now.ok() && now->failing_users_size() == 2;
      },
      absl::Seconds(20)));
  // Several list reads and applies meet the 404.
  const int answered = proxy->not_found_answers();
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return proxy->not_found_answers() >= answered + 3; },
                                      absl::Seconds(20)));
  absl::StatusOr<HubStatus> during = hub->Status();
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->orphaned_bytes(), 0u);
  EXPECT_EQ(during->orphaned_users(), 0u);
  EXPECT_EQ(during->pending_bytes(), 3000u);
  EXPECT_THAT(during->last_parent_error(), ::testing::HasSubstr("404 that is not the panel's"));
  EXPECT_THAT(during->failing_users(0).last_error(),
              ::testing::HasSubstr("404 that is not the panel's: <html>"));
  EXPECT_EQ(during->roster_version(), before.version);
  const State while_404 = follower->Snapshot();
  EXPECT_EQ(while_404.updates, before.updates);  // no empty roster was published
  EXPECT_EQ(while_404.users, before.users);
  EXPECT_EQ(static_cast<size_t>(GetRoster(*hub).users_size()), before.users);
  EXPECT_EQ(panel_->Usage(a), 100u);

  // The proxy recovers: the bytes reach the parent exactly once.
  proxy->Forward();
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(60)));
  EXPECT_EQ(panel_->Usage(a), 1100u);
  EXPECT_EQ(panel_->Usage(b), 2200u);
  absl::StatusOr<HubStatus> after = hub->Status();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->orphaned_bytes(), 0u);
  EXPECT_EQ(follower->Snapshot().gaps, 0);
  EXPECT_TRUE(follower->Snapshot().by_uuid.contains(a));
}

TEST_F(HubRosterTest, AnUnreadableUserIsSkippedAndTheOthersStillReachTheRoster) {
  const std::string good = TestUserUuid(0, 0x77), other = TestUserUuid(1, 0x77),
                    bad = TestUserUuid(2, 0x77), unseen = TestUserUuid(3, 0x77);
  for (const std::string& uuid : {good, other, bad, unseen}) {
    panel_->CreateUser(uuid, 10 * kBytesPerGiB, 0, "2024-01-01");
  }
  // Unreadable before the hub ever saw it: it never appears.
  panel_->SetNegativeUsageInDb(unseen, -static_cast<int64_t>(kBytesPerGiB));
  HubSetup setup{.poll_interval = "1s"};
  setup.metrics_listen = absl::StrCat("127.0.0.1:", hsync::testing::PickFreePort());
  auto hub = StartHub(setup);
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  ASSERT_TRUE(follower->WaitUntil(
      [&](const State& s) { return s.by_uuid.contains(good) && s.by_uuid.contains(bad); },
      absl::Seconds(10)));
  EXPECT_FALSE(follower->Snapshot().by_uuid.contains(unseen));

  // An admin's edit leaves `bad` with a negative usage; then `other` is blocked.
  panel_->SetNegativeUsageInDb(bad, -static_cast<int64_t>(kBytesPerGiB) / 2);
  Patch(other, R"({"enable": false})");
  ASSERT_TRUE(follower->WaitUntil([&](const State& s) { return !s.by_uuid.at(other).enable(); },
                                  absl::Seconds(10)))
      << "one unreadable user froze the roster";
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] {
        absl::StatusOr<HubStatus> now = hub->Status();
        return now.ok() && now->roster_skipped_users_size() == 2;
      },
      absl::Seconds(10)));
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  std::map<std::string, std::string> reasons;
  for (const auto& skipped : status->roster_skipped_users()) reasons[skipped.uuid()] = skipped.reason();
  ASSERT_TRUE(reasons.contains(bad));
  ASSERT_TRUE(reasons.contains(unseen));
  EXPECT_THAT(reasons[bad], ::testing::HasSubstr("current_usage_GB"));
  EXPECT_THAT(reasons[bad], ::testing::HasSubstr("negative"));
  // `bad` keeps its entry as it was (not removed from the children).
  State state = follower->Snapshot();
  ASSERT_TRUE(state.by_uuid.contains(bad));
  EXPECT_EQ(state.by_uuid.at(bad).current_usage_bytes(), 0u);
  EXPECT_FALSE(state.by_uuid.contains(unseen));
  RosterSnapshot snapshot = GetRoster(*hub);
  bool bad_served = false;
  for (const auto& user : snapshot.users()) bad_served = bad_served || user.uuid() == bad;
  EXPECT_TRUE(bad_served);
  // The metric.
  const int metrics_port = std::stoi(
      setup.metrics_listen.substr(setup.metrics_listen.rfind(':') + 1));
  absl::StatusOr<hsync::testing::Scrape> scrape = hsync::testing::ScrapeMetrics(metrics_port);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->Get("hsync_hub_roster_skipped_users"), 2);

  // More polls: still one log line per user and cause.
  const uint64_t version = status->roster_version();
  Patch(good, R"({"comment": "poll marker"})");
  ASSERT_TRUE(follower->WaitUntil(
      [&](const State& s) { return s.by_uuid.at(good).comment() == "poll marker"; },
      absl::Seconds(10)));
  absl::SleepFor(absl::Seconds(2));  // two more polls with the same causes
  EXPECT_GT(follower->Snapshot().version, version);
  const std::string log = hub->ReadLog();
  EXPECT_EQ(Count(log, absl::StrCat("user ", bad, " is left out of the roster")), 1) << log;
  EXPECT_EQ(Count(log, absl::StrCat("user ", unseen, " is left out of the roster")), 1) << log;

  // Fixed on the panel: readable again, its new state reaches the children.
  panel_->SetUsageInDb(bad, 5);
  ASSERT_TRUE(follower->WaitUntil(
      [&](const State& s) { return s.by_uuid.at(bad).current_usage_bytes() == 5; },
      absl::Seconds(10)));
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] {
        absl::StatusOr<HubStatus> now = hub->Status();
        return now.ok() && now->roster_skipped_users_size() == 1;
      },
      absl::Seconds(10)));
  EXPECT_THAT(hub->ReadLog(), ::testing::HasSubstr(absl::StrCat("user ", bad, " is readable again")));
  EXPECT_EQ(follower->Snapshot().gaps, 0);
}

hiddify_sync::v1::WatchRosterRequest Holding(uint64_t epoch, uint64_t version) {
  hiddify_sync::v1::WatchRosterRequest request;
  request.set_roster_epoch(epoch);
  request.set_have_version(version);
  request.set_accepts_chunks(true);
  return request;
}

TEST_F(HubRosterTest, AReconnectGetsTheDeltasSinceItsVersionAndAHubRestartMeansAFullRoster) {
  for (int i = 0; i < 5; ++i) panel_->CreateUser(TestUserUuid(i, 0x71), 10 * kBytesPerGiB);
  auto hub = StartHub(HubSetup{.poll_interval = "1s"});
  ASSERT_NE(hub, nullptr);
  stub_ = hub->Stub();
  const std::string& token = hub->setup().node_tokens.at("node-0");
  State held;
  {
    auto first = Follow(*hub);
    ASSERT_TRUE(first->WaitUntil([](const State& s) { return s.full_updates >= 1; },
                                 absl::Seconds(10)));
    held = first->Snapshot();
  }
  ASSERT_NE(held.epoch, 0u);
  // Away for a while; meanwhile user 1 is blocked.
  Patch(TestUserUuid(1, 0x71), R"({"enable": false})");
  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = hub->Status();
        return status.ok() && status->roster_version() > held.version;
      },
      absl::Seconds(10)));
  RosterFollower back(stub_.get(), "node-0", token, Holding(held.epoch, held.version));
  ASSERT_TRUE(back.WaitUntil(
      [](const State& s) {
        auto it = s.by_uuid.find(TestUserUuid(1, 0x71));
        return it != s.by_uuid.end() && !it->second.enable();
      },
      absl::Seconds(10)));
  State resumed = back.Snapshot();
  EXPECT_FALSE(resumed.first_full);  // deltas, not a full roster
  EXPECT_EQ(resumed.full_updates, 0);
  EXPECT_EQ(resumed.gaps, 0);
  EXPECT_GE(resumed.deltas, 1);
  EXPECT_LT(resumed.users, 5u);  // only what changed came
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->roster_epoch(), held.epoch);
  EXPECT_GE(status->roster_resumed_streams(), 1u);
  EXPECT_GE(status->roster_deltas_sent(), 1u);
  EXPECT_GT(status->roster_history_bytes(), 0u);
  back.Cancel();

  // A new hub run numbers its versions anew: the old position means nothing.
  ASSERT_TRUE(hub->Terminate().ok());
  ASSERT_TRUE(hub->Restart().ok());
  RosterFollower after(stub_.get(), "node-0", token, Holding(held.epoch, resumed.version));
  ASSERT_TRUE(after.WaitUntil([](const State& s) { return s.full_updates >= 1; },
                              absl::Seconds(15)));
  State full = after.Snapshot();
  EXPECT_TRUE(full.first_full);
  EXPECT_NE(full.epoch, held.epoch);
  EXPECT_GE(full.users, 5u);
}

TEST_F(HubRosterTest, AChunkedFullRosterHasEveryUserOnceAndABrokenOneResumesAtItsChunk) {
  for (int i = 0; i < 150; ++i) panel_->CreateUser(TestUserUuid(i, 0x72), kBytesPerGiB);
  auto hub = StartHub(HubSetup{.poll_interval = "30s"});
  ASSERT_NE(hub, nullptr);
  stub_ = hub->Stub();
  const std::string& token = hub->setup().node_tokens.at("node-0");
  hiddify_sync::v1::WatchRosterRequest chunks;
  chunks.set_accepts_chunks(true);
  RosterFollower whole(stub_.get(), "node-0", token, chunks);
  ASSERT_TRUE(whole.WaitUntil([](const State& s) { return s.full_updates == 1; }, absl::Seconds(10)));
  const State all = whole.Snapshot();
  const RosterSnapshot snapshot = GetRoster(*hub);
  EXPECT_EQ(all.chunk_count, 64u);
  EXPECT_EQ(all.chunks, 64);
  EXPECT_EQ(all.version, snapshot.version());
  ASSERT_EQ(all.users, static_cast<size_t>(snapshot.users_size()));
  for (const auto& user : snapshot.users()) EXPECT_TRUE(all.by_uuid.contains(user.uuid()));

  // A stream that breaks after 10 chunks, then asks to go on from chunk 10.
  {
    RosterFollower broken(stub_.get(), "node-0", token, chunks, true, /*cancel_after_chunks=*/10);
    ASSERT_TRUE(broken.WaitUntil([](const State& s) { return s.done; }, absl::Seconds(10)));
    EXPECT_EQ(broken.Snapshot().chunks, 10);
  }
  hiddify_sync::v1::WatchRosterRequest resume = chunks;
  resume.set_roster_epoch(all.epoch);
  resume.set_resume_full_version(all.version);
  resume.set_resume_next_chunk(10);
  RosterFollower rest(stub_.get(), "node-0", token, resume);
  ASSERT_TRUE(rest.WaitUntil([](const State& s) { return s.full_updates == 1; }, absl::Seconds(10)));
  EXPECT_EQ(rest.Snapshot().first_chunk_index, 10u);
  EXPECT_EQ(rest.Snapshot().chunks, 54);
  // A version the hub no longer has: the full roster starts over.
  resume.set_resume_full_version(all.version + 100);
  RosterFollower over(stub_.get(), "node-0", token, resume);
  ASSERT_TRUE(over.WaitUntil([](const State& s) { return s.full_updates == 1; }, absl::Seconds(10)));
  EXPECT_EQ(over.Snapshot().first_chunk_index, 0u);
  EXPECT_EQ(over.Snapshot().chunks, 64);
}

TEST_F(HubRosterTest, UsageOnlyChangesWaitForTheIntervalAccessChangesGoAtOnce) {
  for (int i = 0; i < 3; ++i) panel_->CreateUser(TestUserUuid(i, 0x73), 10 * kBytesPerGiB);
  auto hub = StartHub(HubSetup{.poll_interval = "1s", .usage_interval = "4s"});
  ASSERT_NE(hub, nullptr);
  auto follower = Follow(*hub);
  ASSERT_TRUE(follower->WaitUntil([](const State& s) { return s.full_updates >= 1; },
                                  absl::Seconds(10)));
  Patch(TestUserUuid(0, 0x73), R"({"current_usage_GB": 1.5})");
  // The poll sees it and holds it back.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = hub->Status();
        return status.ok() && status->roster_usage_pending() == 1;
      },
      absl::Seconds(10)));
  // Blocking another user goes out at the next poll, not after the interval.
  Patch(TestUserUuid(1, 0x73), R"({"enable": false})");
  ASSERT_TRUE(follower->WaitUntil(
      [](const State& s) { return !s.by_uuid.at(TestUserUuid(1, 0x73)).enable(); },
      absl::Seconds(10)));
  // The usage goes out with the flush.
  ASSERT_TRUE(follower->WaitUntil(
      [](const State& s) {
        return s.by_uuid.at(TestUserUuid(0, 0x73)).current_usage_bytes() == 3 * kBytesPerGiB / 2;
      },
      absl::Seconds(15)))
      << "usage " << follower->Snapshot().by_uuid.at(TestUserUuid(0, 0x73)).current_usage_bytes()
      << ", usage updates " << follower->Snapshot().usage_updates << ", pending "
      << hub->Status()->roster_usage_pending();
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->roster_usage_pending(), 0u);
  EXPECT_EQ(status->roster_usage_interval_seconds(), 4u);
  EXPECT_EQ(follower->Snapshot().gaps, 0);
}

}  // namespace
}  // namespace hsync::hub::testing
