// usage_mode = "reset": the acknowledged bytes, and only those, come off
// current_usage and the watermark; traffic that arrived meanwhile stays, also
// when the panel reset the counter between the collect and the ack.
#include "reporter/collect/usage_resetter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "reporter/collect/collector.h"
#include "tests/reporter/child_db.h"

namespace hsync::reporter {
namespace {

using hsync::testing::ChildDb;
using hsync::testing::RandomUuid;

class UsageResetterTest : public ::testing::Test {
 protected:
  UsageResetterTest() : child_("rst"), store_(child_.state_db(), false) {
    EXPECT_TRUE(store_.EnsureSchema(child_.conn()).ok());
    options_.node_id = "n";
    options_.panel_database = child_.panel_db();
  }

  void Collect() {
    Collector collector(&store_, options_);
    ASSERT_TRUE(collector.CollectOnce(child_.conn(), absl::Now()).ok());
  }

  // What the sender does on an ack: subtract and delete in one transaction.
  void AckAll() {
    auto reports = child_.Outbox();
    UsageResetter resetter(&store_, child_.panel_db());
    Transaction tx(child_.conn());
    ASSERT_TRUE(tx.status().ok());
    ASSERT_TRUE(store_.LockMeta(child_.conn()).ok());
    ASSERT_TRUE(resetter.SubtractAcknowledged(child_.conn(), reports).ok());
    auto meta = store_.ReadMeta(child_.conn());
    ASSERT_TRUE(store_.DeleteAcked(child_.conn(), meta->stream_id, meta->next_seq - 1).ok());
    ASSERT_TRUE(tx.Commit().ok());
  }

  uint64_t Watermark(const std::string& uuid) {
    auto rs = child_.conn().Query(absl::StrCat("SELECT reported_bytes FROM `", child_.state_db(),
                                               "`.watermark WHERE uuid = '", uuid, "'"));
    return rs.ok() && !rs->rows.empty() ? std::stoull(*rs->rows[0][0]) : 0;
  }

  ChildDb child_;
  StateStore store_;
  CollectOptions options_;
};

TEST_F(UsageResetterTest, SubtractsExactlyTheAcknowledgedBytes) {
  const std::string a = RandomUuid(), b = RandomUuid();
  child_.InsertUser(a, 10'000'000);
  child_.InsertUser(b, 500);  // below the threshold: not reported, not touched
  Collect();
  child_.AddUsage(a, 1234);  // arrives after the collect, before the ack
  AckAll();
  EXPECT_EQ(child_.Usage(a), 1234u);
  EXPECT_EQ(Watermark(a), 0u);
  EXPECT_EQ(child_.Usage(b), 500u);
  child_.AddUsage(a, 2'000'000);
  Collect();
  EXPECT_EQ(child_.OutboxBytes()[a], 2'001'234u);
  AckAll();
  EXPECT_EQ(child_.Usage(a), 0u);
  EXPECT_TRUE(child_.Outbox().empty());
}

TEST_F(UsageResetterTest, AResetBeforeTheAckNeverDrivesCountersNegativeOrLosesBytes) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 10'000'000);
  Collect();
  child_.SetUsage(a, 3'000'000);  // the panel reset it and 3 MB arrived
  Collect();                      // reports 3 MB, watermark 3 MB
  child_.AddUsage(a, 700);
  AckAll();  // acknowledges 10 MB + 3 MB; only what is there can come off
  EXPECT_EQ(child_.Usage(a), 700u);
  EXPECT_EQ(Watermark(a), 0u);
}

// The panel's reset (same day: the counter just went down) between a collect
// and its ack, then 2 MB of new traffic: the ack must not take the 2 MB
// (the reported 10 MB were already erased by the reset); the next collect
// reports exactly them.
TEST_F(UsageResetterTest, AResetBetweenCollectAndAckKeepsTheTrafficAfterIt) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 10'000'000);
  Collect();
  child_.SetUsage(a, 0);
  child_.AddUsage(a, 2'000'000);
  AckAll();
  EXPECT_EQ(child_.Usage(a), 2'000'000u);
  Collect();
  EXPECT_EQ(child_.OutboxBytes()[a], 2'000'000u);
  AckAll();
  EXPECT_EQ(child_.Usage(a), 0u);
  EXPECT_EQ(Watermark(a), 0u);
}

// A reset on a new day (last_reset_time moves) followed by more traffic than
// the old watermark: current_usage is above the watermark, and still the
// ack of the report collected before the reset subtracts nothing.
TEST_F(UsageResetterTest, AResetWithANewDateBeforeTheAckKeepsTrafficAboveTheOldWatermark) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 10'000'000);
  Collect();
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                           " SET current_usage = 15000000, last_reset_time = '2030-01-02'"
                           " WHERE uuid = '", a, "'"));
  AckAll();
  EXPECT_EQ(child_.Usage(a), 15'000'000u);
  Collect();
  EXPECT_EQ(child_.OutboxBytes()[a], 15'000'000u);
  child_.AddUsage(a, 333);
  AckAll();
  EXPECT_EQ(child_.Usage(a), 333u);
}

}  // namespace
}  // namespace hsync::reporter
