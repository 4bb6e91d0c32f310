// GroupCommitter: concurrent writes share one transaction, a failing
// operation rolls back only itself, and results reach the right callers.
#include "hub/journal/journal_group_commit.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = hsync::testing::MakeTempDir("group-commit") + "/db.sqlite";
    auto db = SqliteDb::Open(path_, 1000);
    ASSERT_TRUE(db.ok()) << db.status();
    db_.emplace(std::move(*db));
    ASSERT_TRUE(db_->Exec("PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)")
                    .ok());
    auto insert = db_->Prepare("INSERT INTO t(k, v) VALUES(?1, 'x')");
    ASSERT_TRUE(insert.ok());
    insert_.emplace(std::move(*insert));
    auto committer = GroupCommitter::Start(&*db_);
    ASSERT_TRUE(committer.ok()) << committer.status();
    committer_ = std::move(*committer);
  }
  void TearDown() override {
    committer_.reset();
    insert_.reset();
  }

  // Inserts key k (fails with a constraint error when k exists).
  GroupCommitter::Operation Insert(int64_t k) {
    return [this, k](absl::Time) {
      insert_->BindInt64(1, k);
      return insert_->Run();
    };
  }

  int64_t Rows() {
    auto db = SqliteDb::Open(path_, 1000);
    auto n = db->QueryText("SELECT count(*) FROM t");
    return n.ok() ? std::stoll(*n) : -1;
  }

  std::string path_;
  std::optional<SqliteDb> db_;
  std::optional<SqliteStatement> insert_;
  std::unique_ptr<GroupCommitter> committer_;
};

TEST_F(GroupCommitTest, CallersQueuedDuringABatchShareTheNextTransaction) {
  absl::Notification entered, release;
  std::thread blocker([&] {
    EXPECT_TRUE(committer_
                    ->Run([&](absl::Time) {
                      entered.Notify();
                      release.WaitForNotification();
                      return absl::OkStatus();
                    })
                    .ok());
  });
  entered.WaitForNotification();
  constexpr int kCallers = 20;
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { EXPECT_TRUE(committer_->Run(Insert(i)).ok()); });
  }
  absl::SleepFor(absl::Milliseconds(200));  // all 20 are queued now
  release.Notify();
  for (auto& t : callers) t.join();
  blocker.join();
  const GroupCommitter::Counters c = committer_->counters();
  EXPECT_EQ(c.operations, kCallers + 1u);
  EXPECT_EQ(c.batches, 2u);  // the blocker's batch, then everyone else's
  EXPECT_EQ(Rows(), kCallers);
}

TEST_F(GroupCommitTest, AFailingOperationRollsBackOnlyItself) {
  ASSERT_TRUE(committer_->Run(Insert(1)).ok());
  absl::Notification entered, release;
  std::thread blocker([&] {
    (void)committer_->Run([&](absl::Time) {
      entered.Notify();
      release.WaitForNotification();
      return absl::OkStatus();
    });
  });
  entered.WaitForNotification();
  absl::Status half_done_status, dup_status, ok_status;
  // Inserts 100 then fails: its insert must not survive.
  std::thread half_done([&] {
    half_done_status = committer_->Run([&](absl::Time t) {
      absl::Status s = Insert(100)(t);
      if (!s.ok()) return s;
      return absl::InternalError("changed my mind");
    });
  });
  std::thread dup([&] { dup_status = committer_->Run(Insert(1)); });
  std::thread ok([&] { ok_status = committer_->Run(Insert(2)); });
  absl::SleepFor(absl::Milliseconds(200));
  release.Notify();
  half_done.join();
  dup.join();
  ok.join();
  blocker.join();
  EXPECT_EQ(half_done_status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(dup_status.code(), absl::StatusCode::kFailedPrecondition) << dup_status;
  EXPECT_TRUE(ok_status.ok()) << ok_status;
  EXPECT_EQ(Rows(), 2);  // keys 1 and 2; not 100
}

}  // namespace
}  // namespace hsync::hub
