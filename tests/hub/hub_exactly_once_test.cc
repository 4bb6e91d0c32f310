// Every byte a child reports reaches the parent exactly once: the real hub
// binary between simulated children (gRPC over loopback) and panelsim over
// real MariaDB, through concurrency, duplicates, new streams, SIGKILLs at
// the two dangerous moments, and a parent that fails in every way it can.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/units.h"
#include "tests/hub/hub_harness.h"
#include "tests/hub/parent_client_test_panel.h"

namespace hsync::hub::testing {
namespace {

using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::ReportAck;
using hiddify_sync::v1::UsageReport;

class HubExactlyOnceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    panel_ = TestPanel::Start();
    ASSERT_NE(panel_, nullptr);
  }

  std::unique_ptr<HubProcess> StartHub(int nodes, HubSetup setup = {}) {
    setup.parent_url = panel_->runner().base_url();
    setup.parent_api_key = panel_->runner().api_key();
    setup.node_tokens = MakeNodeTokens(nodes);
    auto hub = HubProcess::Start(setup);
    EXPECT_TRUE(hub.ok()) << hub.status();
    return hub.ok() ? *std::move(hub) : nullptr;
  }

  // `n` users with a 1000 GiB quota and a random usage to start from.
  void CreateUsers(int n, int salt) {
    absl::BitGen rng;
    for (int i = 0; i < n; ++i) {
      const std::string uuid = TestUserUuid(i, salt);
      const uint64_t initial = absl::Uniform<uint64_t>(rng, 0, 5 * kBytesPerGiB);
      panel_->CreateUser(uuid, 1000 * kBytesPerGiB, initial);
      uuids_.push_back(uuid);
      expected_[uuid] = initial;
    }
  }

  SimulatedChild Child(HubProcess& hub, int node) {
    const std::string id = absl::StrCat("node-", node);
    return SimulatedChild(id, hub.setup().node_tokens.at(id), hub.channel());
  }

  // Random deltas (odd sizes, up to ~3 GiB) for a random subset of the users.
  SimulatedChild::Deltas RandomDeltas(absl::BitGen& rng) {
    SimulatedChild::Deltas deltas;
    for (const std::string& uuid : uuids_) {
      if (absl::Bernoulli(rng, 0.3)) continue;
      deltas.emplace_back(uuid, absl::Uniform<uint64_t>(rng, 1, 3 * kBytesPerGiB));
    }
    return deltas;
  }

  void Expect(const SimulatedChild::Deltas& deltas) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [uuid, bytes] : deltas) expected_[uuid] += bytes;
  }

  // The parent's stored usage of every user equals what it started with plus
  // every acknowledged delta, to the byte.
  void ExpectParentExact() {
    for (const std::string& uuid : uuids_) {
      EXPECT_EQ(panel_->Usage(uuid), expected_[uuid]) << uuid;
    }
  }

  std::unique_ptr<TestPanel> panel_;
  std::vector<std::string> uuids_;
  std::mutex mu_;
  std::map<std::string, uint64_t> expected_;
};

class ConcurrentChildrenTest : public HubExactlyOnceTest,
                               public ::testing::WithParamInterface<int> {};

TEST_P(ConcurrentChildrenTest, ParentUsageIsTheSumOfEveryChildsDeltasToTheByte) {
  const int children = GetParam();
  CreateUsers(12, 0xc0);
  auto hub = StartHub(children);
  ASSERT_NE(hub, nullptr);
  constexpr int kReportsPerChild = 12;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int c = 0; c < children; ++c) {
    threads.emplace_back([&, c] {
      SimulatedChild child = Child(*hub, c);
      absl::BitGen rng;
      for (int r = 0; r < kReportsPerChild; ++r) {
        SimulatedChild::Deltas deltas = RandomDeltas(rng);
        absl::StatusOr<uint64_t> acked = child.Report(deltas);
        if (!acked.ok() || *acked != static_cast<uint64_t>(r + 1)) {
          ++failures;
          continue;
        }
        Expect(deltas);
        absl::SleepFor(absl::Milliseconds(absl::Uniform(rng, 0, 60)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(60))) << hub->ReadLog();
  ExpectParentExact();
}

INSTANTIATE_TEST_SUITE_P(TwoAndTen, ConcurrentChildrenTest, ::testing::Values(2, 10));

TEST_F(HubExactlyOnceTest, DuplicatesAndRetriesAreAppliedOnceAndANewStreamIsApplied) {
  CreateUsers(3, 0xd0);
  auto hub = StartHub(1, HubSetup{.max_apply_delay = "1s"});
  ASSERT_NE(hub, nullptr);
  SimulatedChild child = Child(*hub, 0);
  const SimulatedChild::Deltas d1 = {{uuids_[0], 1'000'001}, {uuids_[1], 7}};
  const SimulatedChild::Deltas d2 = {{uuids_[1], 123'456'789}, {uuids_[2], 3}};
  const UsageReport r1 = child.Next(d1);
  const UsageReport r2 = child.Next(d2);
  ReportAck ack;
  ASSERT_TRUE(child.Send(r1, &ack).ok());
  EXPECT_EQ(ack.acked_seq(), 1u);
  ASSERT_TRUE(child.Send(r1, &ack).ok());  // a retry after a lost ack
  EXPECT_EQ(ack.acked_seq(), 1u);
  // The same report twice at the same moment (a retry racing the original).
  std::thread racer([&] {
    ReportAck other;
    EXPECT_TRUE(child.Send(r2, &other).ok());
    EXPECT_EQ(other.acked_seq(), 2u);
  });
  ASSERT_TRUE(child.Send(r2, &ack).ok());
  racer.join();
  EXPECT_EQ(ack.acked_seq(), 2u);
  ASSERT_TRUE(child.Send(r1, &ack).ok());  // very late duplicate
  EXPECT_EQ(ack.acked_seq(), 2u);
  Expect(d1);
  Expect(d2);

  // The reporter lost its state: a new stream starts again at seq 1 and 2.
  child.NewStream();
  const SimulatedChild::Deltas d3 = {{uuids_[0], 55}, {uuids_[2], 66}};
  const SimulatedChild::Deltas d4 = {{uuids_[0], 77}};
  ASSERT_EQ(child.Report(d3).value_or(0), 1u);
  ASSERT_EQ(child.Report(d4).value_or(0), 2u);
  Expect(d3);
  Expect(d4);

  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(30))) << hub->ReadLog();
  ExpectParentExact();
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->nodes_size(), 1);
  EXPECT_EQ(status->nodes(0).duplicates(), 3u);
  EXPECT_EQ(status->nodes(0).reports_accepted(), 4u);
}

TEST_F(HubExactlyOnceTest, SigkillBetweenJournalAndApplyLosesNothing) {
  CreateUsers(5, 0xe0);
  // Nothing is due for an hour: acknowledged bytes sit in the journal only.
  auto hub = StartHub(2, HubSetup{.max_apply_delay = "1h"});
  ASSERT_NE(hub, nullptr);
  absl::BitGen rng;
  uint64_t total = 0;
  for (int c = 0; c < 2; ++c) {
    SimulatedChild child = Child(*hub, c);
    for (int r = 0; r < 5; ++r) {
      SimulatedChild::Deltas deltas = RandomDeltas(rng);
      ASSERT_TRUE(child.Report(deltas).ok());
      Expect(deltas);
      for (const auto& [uuid, bytes] : deltas) total += bytes;
    }
  }
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->pending_bytes(), total);
  for (const std::string& uuid : uuids_) {
    EXPECT_NE(panel_->Usage(uuid), expected_[uuid]) << "applied too early";
  }
  hub->Kill();

  hub->setup().max_apply_delay = "0s";
  ASSERT_TRUE(hub->Restart().ok());
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(30))) << hub->ReadLog();
  ExpectParentExact();
}

TEST_F(HubExactlyOnceTest, SigkillBetweenPatchAndMarkingAppliedDoesNotApplyTwice) {
  CreateUsers(3, 0xf0);
  auto hub = StartHub(1);
  ASSERT_NE(hub, nullptr);
  // The panel applies the next PATCH, then holds its answer for 8 s.
  panel_->AddFault({{"route", "patch_user"}, {"after_latency_ms", 8000}, {"remaining", 1}});
  SimulatedChild child = Child(*hub, 0);
  const SimulatedChild::Deltas deltas = {{uuids_[0], 3'333'333'333}};
  ASSERT_TRUE(child.Report(deltas).ok());
  Expect(deltas);
  // Wait until the parent has the bytes while the hub still waits for the answer...
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return panel_->Usage(uuids_[0]) == expected_[uuids_[0]]; },
                                      absl::Seconds(6)));
  absl::StatusOr<HubStatus> status = hub->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->pending_bytes(), 3'333'333'333u);  // not marked applied yet
  // ...and kill it there.
  hub->Kill();
  panel_->ClearFaults();

  ASSERT_TRUE(hub->Restart().ok());
  // More traffic after the restart, for the same user and others.
  SimulatedChild again = Child(*hub, 0);  // a new stream, as after a reporter restart
  const SimulatedChild::Deltas more = {{uuids_[0], 11}, {uuids_[1], 22}};
  ASSERT_TRUE(again.Report(more).ok());
  Expect(more);
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(60))) << hub->ReadLog();
  ExpectParentExact();
}

// Acks keep coming while the parent fails; nothing is applied twice or lost.
TEST_F(HubExactlyOnceTest, ParentErrorsTimeoutsDropsAndGarbageLoseNothing) {
  CreateUsers(4, 0xa0);
  auto hub = StartHub(2, HubSetup{.parent_timeout = "2s"});
  ASSERT_NE(hub, nullptr);
  SimulatedChild a = Child(*hub, 0);
  SimulatedChild b = Child(*hub, 1);
  absl::BitGen rng;
  const std::vector<nlohmann::json> faults = {
      {{"route", "*"}, {"error_rate", 1.0}, {"error_status", 503}},
      {{"route", "*"}, {"timeout_rate", 1.0}},
      {{"route", "*"}, {"drop_rate", 1.0}},
      {{"route", "*"}, {"garbage_rate", 1.0}},
  };
  for (const nlohmann::json& fault : faults) {
    SCOPED_TRACE(fault.dump());
    const int64_t patches_before = panel_->Counters().value("usage_patches", int64_t{0});
    panel_->AddFault(fault);
    for (int r = 0; r < 3; ++r) {
      for (SimulatedChild* child : {&a, &b}) {
        SimulatedChild::Deltas deltas = RandomDeltas(rng);
        ASSERT_TRUE(child->Report(deltas).ok());  // acknowledged although the parent fails
        Expect(deltas);
      }
    }
    absl::SleepFor(absl::Milliseconds(1500));
    absl::StatusOr<HubStatus> status = hub->Status();
    ASSERT_TRUE(status.ok());
    EXPECT_GT(status->pending_bytes(), 0u);
    EXPECT_FALSE(status->last_parent_error().empty());
    EXPECT_EQ(panel_->Counters().value("usage_patches", int64_t{0}), patches_before);  // nothing got through
    panel_->ClearFaults();
    ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(90))) << hub->ReadLog();
    ExpectParentExact();
  }
}

TEST_F(HubExactlyOnceTest, AFlakyParentUnderConcurrentTrafficEndsExact) {
  CreateUsers(8, 0xb0);
  auto hub = StartHub(3, HubSetup{.parent_timeout = "2s"});
  ASSERT_NE(hub, nullptr);
  panel_->AddFault({{"route", "*"},
                    {"error_rate", 0.2},
                    {"drop_rate", 0.15},
                    {"garbage_rate", 0.1},
                    {"timeout_rate", 0.03}});
  // Some PATCHes are applied by the panel and their answers never arrive.
  panel_->AddFault({{"route", "patch_user"}, {"after_latency_ms", 2500}, {"remaining", 3}});
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int c = 0; c < 3; ++c) {
    threads.emplace_back([&, c] {
      SimulatedChild child = Child(*hub, c);
      absl::BitGen rng;
      for (int r = 0; r < 8; ++r) {
        SimulatedChild::Deltas deltas = RandomDeltas(rng);
        if (!child.Report(deltas).ok()) {
          ++failures;
          continue;
        }
        Expect(deltas);
        absl::SleepFor(absl::Milliseconds(absl::Uniform(rng, 50, 300)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  absl::SleepFor(absl::Seconds(2));
  panel_->ClearFaults();
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(120))) << hub->ReadLog();
  ExpectParentExact();
}

}  // namespace
}  // namespace hsync::hub::testing
