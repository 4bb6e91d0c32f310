// usage_mode = "follow" end to end, every part real: panelsim parent, the hub
// binary, a child database whose panel adds usage atomically (it has the
// add_usage_json procedure; the test plays the 12.x usage task with atomic
// adds on connections of its own), and the reporter binary, SIGKILLed at
// random moments while traffic, collects and roster updates run. Every byte
// reaches the parent exactly once; once settled, every child counter equals
// the parent's; a reset on the parent reaches the child's counter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "common/panel_time.h"
#include "tests/reporter/e2e_system.h"
#include "tests/support/child_process.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
namespace {

// The 12.x panel's usage task on the child: atomic adds, counted per user.
class AtomicTraffic {
 public:
  AtomicTraffic(std::string database, std::vector<std::string> uuids)
      : database_(std::move(database)), uuids_(std::move(uuids)) {}
  ~AtomicTraffic() { Stop(); }

  void Start() {
    stop_ = false;
    thread_ = std::thread([this] {
      auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(database_));
      ASSERT_TRUE(conn.ok()) << conn.status();
      std::mt19937_64 rng(7);
      while (!stop_.load()) {
        const std::string& uuid = uuids_[rng() % uuids_.size()];
        const uint64_t bytes = 10'000 + rng() % 2'000'000;
        auto r = (*conn)->Execute(absl::StrCat(
            "UPDATE user SET current_usage = current_usage + ", bytes,
            ", last_online = NOW(), start_date = IFNULL(start_date, CURDATE()) WHERE uuid = '",
            uuid, "'"));
        ASSERT_TRUE(r.ok()) << r.status();
        {
          absl::MutexLock lock(&mu_);
          added_[uuid] += bytes;
        }
        absl::SleepFor(absl::Milliseconds(5));
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::map<std::string, uint64_t> Added() {
    absl::MutexLock lock(&mu_);
    return added_;
  }

 private:
  std::string database_;
  std::vector<std::string> uuids_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::map<std::string, uint64_t> added_ ABSL_GUARDED_BY(mu_);
};

class UsageFollowE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    E2eOptions options;
    options.parent_users = 12;
    auto sys = E2eSystem::Start(options);
    ASSERT_TRUE(sys.ok()) << sys.status();
    sys_ = *std::move(sys);
    ASSERT_TRUE(sys_->WaitRosterApplied(absl::Seconds(30)).ok()) << sys_->reporter().Log();
    // The child panel is a 12.x one: it has add_usage_json. The reporter
    // checks at start, so restart it.
    auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(sys_->child_db()));
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE((*conn)->Execute("CREATE OR REPLACE PROCEDURE add_usage_json(IN usage_data LONGTEXT,"
                                 " IN cur_time DATETIME) BEGIN END").ok());
    sys_->reporter().Kill();
    ASSERT_TRUE(sys_->reporter().Start().ok());
    ASSERT_TRUE(WaitFor([&] {
      auto s = sys_->ReporterStatus();
      return s.ok() && s->usage_mode_effective() == "follow";
    }, absl::Seconds(20))) << sys_->reporter().Log();
    auto parent = sys_->ParentUsage();
    ASSERT_TRUE(parent.ok());
    before_ = *parent;
    for (const auto& [uuid, bytes] : before_) uuids_.push_back(uuid);
  }

  // Traffic for `d`, with the reporter SIGKILLed and restarted `kills` times.
  void TrafficWithKills(AtomicTraffic& traffic, absl::Duration d, int kills) {
    traffic.Start();
    std::mt19937 rng(11);
    for (int i = 0; i < kills; ++i) {
      absl::SleepFor(d / (kills + 1) + absl::Milliseconds(rng() % 400));
      sys_->reporter().Kill();
      ASSERT_TRUE(sys_->reporter().Start().ok()) << sys_->reporter().Log();
    }
    absl::SleepFor(d / (kills + 1));
    traffic.Stop();
    absl::Status settled = sys_->WaitSettled(absl::Now(), absl::Seconds(60));
    ASSERT_TRUE(settled.ok()) << settled;
  }

  // Waits until every child counter equals the parent's (the roster carried
  // the hub's last applies); describes the last difference.
  void ExpectChildEqualsParent() {
    std::string diff;
    const bool equal = WaitFor([&] {
      auto parent = sys_->ParentUsage();
      auto child = sys_->ChildUsage();
      if (!parent.ok() || !child.ok()) return false;
      for (const auto& [uuid, bytes] : *parent) {
        if ((*child)[uuid] != bytes) {
          diff = absl::StrCat(uuid, ": child ", (*child)[uuid], ", parent ", bytes);
          return false;
        }
      }
      return true;
    }, absl::Seconds(20));
    EXPECT_TRUE(equal) << diff;
  }

  std::unique_ptr<E2eSystem> sys_;
  std::map<std::string, uint64_t> before_;
  std::vector<std::string> uuids_;
};

TEST_F(UsageFollowE2eTest, ExactThroughKillsAndTheChildCounterFollowsTheParentAndItsReset) {
  AtomicTraffic traffic(sys_->child_db(), uuids_);
  ASSERT_NO_FATAL_FAILURE(TrafficWithKills(traffic, absl::Seconds(6), 2));
  auto parent = sys_->ParentUsage();
  ASSERT_TRUE(parent.ok());
  auto added = traffic.Added();
  uint64_t total = 0;
  for (const auto& uuid : uuids_) {
    EXPECT_EQ((*parent)[uuid] - before_[uuid], added[uuid]) << uuid;
    total += added[uuid];
  }
  std::cout << "phase 1: " << total << " bytes added on the child, exact on the parent\n";
  ExpectChildEqualsParent();

  // The parent resets half of the users (nothing is in flight now).
  std::vector<std::string> reset(uuids_.begin(), uuids_.begin() + uuids_.size() / 2);
  for (const auto& uuid : reset) {
    auto r = sys_->parent().Control("POST", "/_sim/reset", absl::StrCat(R"({"uuid":")", uuid, R"("})"));
    ASSERT_TRUE(r.ok() && r->status == 200);
  }
  ASSERT_TRUE(WaitFor([&] {
    auto child = sys_->ChildUsage();
    if (!child.ok()) return false;
    for (const auto& uuid : reset) {
      if ((*child)[uuid] != 0) return false;
    }
    return true;
  }, absl::Seconds(20))) << "the parent's reset did not reach the child's counter";
  EXPECT_EQ(sys_->ChildColumn(reset[0], "last_reset_time"), FormatPanelDate(PanelToday()));

  auto mid = sys_->ParentUsage();
  ASSERT_TRUE(mid.ok());
  AtomicTraffic more(sys_->child_db(), uuids_);
  ASSERT_NO_FATAL_FAILURE(TrafficWithKills(more, absl::Seconds(6), 2));
  parent = sys_->ParentUsage();
  ASSERT_TRUE(parent.ok());
  auto added2 = more.Added();
  for (const auto& uuid : uuids_) {
    EXPECT_EQ((*parent)[uuid] - (*mid)[uuid], added2[uuid]) << uuid;
  }
  ExpectChildEqualsParent();
  auto status = sys_->ReporterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->usage_mode_configured(), "follow");
  EXPECT_TRUE(status->panel_adds_usage_atomically());
}

}  // namespace
}  // namespace hsync::testing
