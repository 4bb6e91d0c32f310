// Collector on a real MariaDB with the Hiddify schema: deltas against
// watermarks, the threshold wait, reset detection, last_online, baseline,
// stream/seq persistence, that it never writes current_usage, the
// not-yet-subtracted amounts of reset mode, and merging unsent reports.
#include "reporter/collect/collector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "tests/reporter/child_db.h"

namespace hsync::reporter {
namespace {

using hsync::testing::ChildDb;
using hsync::testing::RandomUuid;
using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kMB = 1'000'000;

class CollectorTest : public ::testing::Test {
 protected:
  CollectorTest() : child_("col"), store_(child_.state_db(), /*baseline=*/false) {
    auto state = store_.EnsureSchema(child_.conn());
    EXPECT_TRUE(state.ok()) << state.status();
    options_.node_id = "child-1";
    options_.panel_database = child_.panel_db();
  }

  CollectResult Collect() {
    Collector collector(&store_, options_);
    auto r = collector.CollectOnce(child_.conn(), absl::Now());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CollectResult();
  }

  // Bytes per uuid in the reports written since the last call.
  std::map<std::string, uint64_t> NewBytes() {
    std::map<std::string, uint64_t> out;
    auto all = child_.Outbox();
    for (size_t i = seen_; i < all.size(); ++i) {
      for (const auto& u : all[i].usages()) {
        if (u.bytes() > 0) out[u.uuid()] += u.bytes();
      }
    }
    seen_ = all.size();
    return out;
  }

  uint64_t Unsubtracted(const std::string& uuid) {
    auto rs = child_.conn().Query(absl::StrCat("SELECT unsubtracted_bytes FROM `", child_.state_db(),
                                               "`.watermark WHERE uuid = '", uuid, "'"));
    EXPECT_TRUE(rs.ok()) << rs.status();
    return rs.ok() && !rs->rows.empty() ? std::stoull(*rs->rows[0][0]) : 0;
  }

  ChildDb child_;
  StateStore store_;
  CollectOptions options_;
  size_t seen_ = 0;
};

TEST_F(CollectorTest, FirstCollectReportsAllUsageOfUsersWithoutWatermark) {
  const std::string a = RandomUuid(), b = RandomUuid(), c = RandomUuid();
  child_.InsertUser(a, 5 * kMB);
  child_.InsertUser(b, 123'456'789);
  child_.InsertUser(c, 0);
  CollectResult r = Collect();
  EXPECT_EQ(r.first_seq, 1u);
  EXPECT_EQ(r.last_seq, 1u);
  EXPECT_NE(r.stream_id, 0u);
  EXPECT_EQ(r.bytes_reported, 5 * kMB + 123'456'789);
  EXPECT_THAT(NewBytes(), UnorderedElementsAre(Pair(a, 5 * kMB), Pair(b, 123'456'789u)));
  auto outbox = child_.Outbox();
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].node_id(), "child-1");
  EXPECT_EQ(outbox[0].stream_id(), r.stream_id);
  EXPECT_EQ(outbox[0].seq(), 1u);
  EXPECT_GT(outbox[0].collected_at().seconds(), 0);
}

TEST_F(CollectorTest, ReportsExactDeltaAgainstTheWatermark) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 5 * kMB);
  Collect();
  NewBytes();
  child_.AddUsage(a, 3 * kMB + 17);
  CollectResult r = Collect();
  EXPECT_EQ(r.first_seq, 2u);
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, 3 * kMB + 17)));
  // Nothing new: no report, no seq consumed.
  r = Collect();
  EXPECT_EQ(r.last_seq, 0u);
  EXPECT_TRUE(NewBytes().empty());
  child_.AddUsage(a, 2 * kMB);
  EXPECT_EQ(Collect().first_seq, 3u);
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, 2 * kMB)));
}

TEST_F(CollectorTest, UsersBelowTheThresholdWaitAndLoseNothing) {
  const std::string a = RandomUuid(), b = RandomUuid();
  child_.InsertUser(a, 400'000);
  child_.InsertUser(b, 2 * kMB);
  CollectResult r = Collect();
  EXPECT_EQ(r.users_waiting, 1u);
  EXPECT_EQ(r.bytes_waiting, 400'000u);
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(b, 2 * kMB)));
  child_.AddUsage(a, 300'000);  // 700,000: still waiting
  EXPECT_TRUE(NewBytes().empty() && Collect().last_seq == 0);
  child_.AddUsage(a, 300'001);  // 1,000,001: all of it goes
  Collect();
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, 1'000'001u)));
}

TEST_F(CollectorTest, UsageBelowTheWatermarkIsAReset) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 50 * kMB);
  Collect();
  NewBytes();
  child_.SetUsage(a, 2 * kMB);  // the panel reset it, then 2 MB arrived
  CollectResult r = Collect();
  EXPECT_EQ(r.resets_detected, 1u);
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, 2 * kMB)));
  child_.AddUsage(a, kMB);
  Collect();
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, kMB)));
}

TEST_F(CollectorTest, ResetBelowTheThresholdStillMovesTheWatermarkDown) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 50 * kMB);
  Collect();
  NewBytes();
  child_.SetUsage(a, 0);  // reset, nothing yet
  Collect();
  EXPECT_TRUE(NewBytes().empty());
  child_.SetUsage(a, 60 * kMB);  // above the old watermark: all of it is new
  Collect();
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, 60 * kMB)));
}

TEST_F(CollectorTest, MovedLastResetTimeIsAResetEvenAboveTheWatermark) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 10 * kMB);
  Collect();
  NewBytes();
  // Between two collects the panel reset the user and 70 MB arrived.
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                           " SET current_usage = 70000000, last_reset_time = '2030-01-02'"
                           " WHERE uuid = '", a, "'"));
  CollectResult r = Collect();
  EXPECT_EQ(r.resets_detected, 1u);
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, 70 * kMB)));
  child_.AddUsage(a, 5 * kMB);  // same last_reset_time: a normal delta
  Collect();
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(a, 5 * kMB)));
}

TEST_F(CollectorTest, LastOnlineIsReportedWhenNewerThanLastReported) {
  const std::string a = RandomUuid(), never = RandomUuid();
  child_.InsertUser(a, 10, "2024-05-01 10:00:00");  // below the threshold
  child_.InsertUser(never, 10);
  Collect();
  auto outbox = child_.Outbox();
  ASSERT_EQ(outbox.size(), 1u);
  ASSERT_EQ(outbox[0].usages_size(), 1);
  const auto& u = outbox[0].usages(0);
  EXPECT_EQ(u.uuid(), a);
  EXPECT_EQ(u.bytes(), 0u);
  ASSERT_TRUE(u.has_last_online());
  EXPECT_EQ(u.last_online().seconds(),
            absl::ToUnixSeconds(absl::FromCivil(absl::CivilSecond(2024, 5, 1, 10, 0, 0), PanelTimeZone())));
  EXPECT_EQ(Collect().last_seq, 0u);  // same last_online: nothing
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                           " SET last_online = '2024-05-01 10:01:00' WHERE uuid = '", a, "'"));
  EXPECT_EQ(Collect().users_reported, 1u);
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                           " SET last_online = '2024-04-01 00:00:00' WHERE uuid = '", a, "'"));
  EXPECT_EQ(Collect().last_seq, 0u);  // older: nothing
}

TEST_F(CollectorTest, NeverWritesCurrentUsage) {
  child_.Exec(absl::StrCat("CREATE TABLE `", child_.panel_db(), "`.usage_writes (n INT)"));
  child_.Exec(absl::StrCat("CREATE TRIGGER `", child_.panel_db(), "`.count_usage_writes BEFORE UPDATE ON ",
                           child_.UserTable(), " FOR EACH ROW BEGIN IF NOT (NEW.current_usage <=> "
                           "OLD.current_usage) THEN INSERT INTO `", child_.panel_db(),
                           "`.usage_writes VALUES (1); END IF; END"));
  const std::string a = RandomUuid(), b = RandomUuid();
  child_.InsertUser(a, 50 * kMB, "2024-01-01 00:00:00");
  child_.InsertUser(b, 10);
  Collect();
  child_.SetUsage(a, kMB);  // a reset: the test's own write, 1 row
  Collect();
  child_.AddUsage(b, 5 * kMB);  // the test's own write, 1 row
  Collect();
  Collect();
  EXPECT_EQ(child_.CountRows(absl::StrCat("`", child_.panel_db(), "`.usage_writes")), 2u);
  EXPECT_EQ(child_.Usage(a), kMB);
  EXPECT_EQ(child_.Usage(b), 5 * kMB + 10);
}

TEST_F(CollectorTest, StreamAndSeqSurviveARestartAndALostStateStartsANewStream) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 5 * kMB);
  const uint64_t stream = Collect().stream_id;
  child_.AddUsage(a, 5 * kMB);
  EXPECT_EQ(Collect().last_seq, 2u);
  {
    // A "restarted" reporter: new objects, new connection, same database.
    auto conn = MariaDbConnection::Connect(child_.Options());
    ASSERT_TRUE(conn.ok());
    StateStore store(child_.state_db(), false);
    auto state = store.EnsureSchema(**conn);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->stream_id, stream);
    EXPECT_EQ(state->next_seq, 3u);
    child_.AddUsage(a, 5 * kMB);
    Collector collector(&store, options_);
    auto r = collector.CollectOnce(**conn, absl::Now());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stream_id, stream);
    EXPECT_EQ(r->first_seq, 3u);
  }
  child_.Exec(absl::StrCat("DROP DATABASE `", child_.state_db(), "`"));
  auto state = store_.EnsureSchema(child_.conn());
  ASSERT_TRUE(state.ok());
  EXPECT_NE(state->stream_id, stream);
  EXPECT_EQ(state->next_seq, 1u);
}

TEST_F(CollectorTest, BaselineRecordsExistingUsageWithoutReportingIt) {
  const std::string a = RandomUuid(), b = RandomUuid();
  child_.InsertUser(a, 500 * kMB, "2024-01-01 00:00:00");
  child_.InsertUser(b, 7 * kMB);
  child_.Exec(absl::StrCat("DROP DATABASE `", child_.state_db(), "`"));
  StateStore store(child_.state_db(), /*baseline=*/true);
  ASSERT_TRUE(store.EnsureSchema(child_.conn()).ok());
  Collector collector(&store, options_);
  auto r = collector.CollectOnce(child_.conn(), absl::Now());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->baselined);
  EXPECT_EQ(r->last_seq, 0u);
  EXPECT_TRUE(child_.Outbox().empty());
  child_.AddUsage(a, 3 * kMB);
  r = collector.CollectOnce(child_.conn(), absl::Now());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->baselined);
  EXPECT_THAT(child_.OutboxBytes(), ElementsAre(Pair(a, 3 * kMB)));
}

TEST_F(CollectorTest, LargeCollectsAreSplitIntoConsecutiveReports) {
  options_.max_usages_per_report = 3;
  options_.read_batch = 4;  // several key-ordered batches of one snapshot
  std::map<std::string, uint64_t> expected;
  for (int i = 0; i < 10; ++i) {
    const std::string u = RandomUuid();
    child_.InsertUser(u, (i + 1) * kMB);
    expected[u] = (i + 1) * kMB;
  }
  CollectResult r = Collect();
  EXPECT_EQ(r.first_seq, 1u);
  EXPECT_EQ(r.last_seq, 4u);
  EXPECT_EQ(r.users_scanned, 10u);
  auto outbox = child_.Outbox();
  ASSERT_EQ(outbox.size(), 4u);
  for (size_t i = 0; i < outbox.size(); ++i) EXPECT_EQ(outbox[i].seq(), i + 1);
  EXPECT_EQ(child_.OutboxBytes(), expected);
}

TEST_F(CollectorTest, WatermarksOfDeletedUsersAreDroppedAndReusedIdsStartFresh) {
  const std::string a = RandomUuid(), b = RandomUuid();
  child_.InsertUser(a, 5 * kMB);
  child_.InsertUser(b, 9 * kMB);
  Collect();
  NewBytes();
  const std::string b_id = *child_.Column(b, "id");
  child_.Exec(absl::StrCat("DELETE FROM ", child_.UserTable(), " WHERE uuid = '", a, "'"));
  // A restore gave b's id to a different user, c, with 2 MB.
  const std::string c = RandomUuid();
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(), " SET uuid = '", c,
                           "', current_usage = 2000000 WHERE id = ", b_id));
  CollectResult r = Collect();
  EXPECT_EQ(r.watermarks_dropped, 1u);
  EXPECT_EQ(r.resets_detected, 0u);
  EXPECT_THAT(NewBytes(), ElementsAre(Pair(c, 2 * kMB)));
  EXPECT_EQ(child_.CountRows(absl::StrCat("`", child_.state_db(), "`.watermark")), 1u);
}

TEST_F(CollectorTest, NonCanonicalUuidIsSkippedNotSent) {
  child_.InsertUser("NOT-A-UUID", 9 * kMB);
  const std::string a = RandomUuid();
  child_.InsertUser(a, 2 * kMB);
  CollectResult r = Collect();
  EXPECT_EQ(r.users_skipped, 1u);
  EXPECT_THAT(child_.OutboxBytes(), ElementsAre(Pair(a, 2 * kMB)));
}

TEST_F(CollectorTest, MissingPanelTableIsAClearErrorAndWritesNothing) {
  child_.Exec(absl::StrCat("DROP TABLE ", child_.UserTable()));
  Collector collector(&store_, options_);
  auto r = collector.CollectOnce(child_.conn(), absl::Now());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr(absl::StrCat("`", child_.panel_db(), "`.`user`")));
  EXPECT_TRUE(child_.Outbox().empty());
  auto meta = store_.ReadMeta(child_.conn());
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->next_seq, 1u);
}

}  // namespace
}  // namespace hsync::reporter

namespace hsync::reporter {
namespace {

// What reset mode may still subtract: the bytes reported since the last
// reset the collector saw; a reset drops what was reported before it.
TEST_F(CollectorTest, UnsubtractedBytesCountSinceTheLastResetSeen) {
  const std::string a = RandomUuid();
  child_.InsertUser(a, 10 * kMB);
  Collect();
  EXPECT_EQ(Unsubtracted(a), 10 * kMB);
  child_.AddUsage(a, 2 * kMB);
  Collect();
  EXPECT_EQ(Unsubtracted(a), 12 * kMB);
  child_.SetUsage(a, 3 * kMB);  // the panel reset it, 3 MB arrived
  CollectResult r = Collect();
  EXPECT_EQ(r.resets_detected, 1u);
  EXPECT_EQ(Unsubtracted(a), 3 * kMB);
  child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(),
                           " SET current_usage = 20000000, last_reset_time = '2030-01-02'"
                           " WHERE uuid = '", a, "'"));
  Collect();
  EXPECT_EQ(Unsubtracted(a), 20 * kMB);
}

// Past merge_after_rows, the reports that never left become one: per-user
// sums, the latest last_online, the newest collected_at, seqs without gaps;
// a report already handed to the sender is never touched.
TEST_F(CollectorTest, UnsentReportsAreMergedPastTheThresholdAndSentOnesNever) {
  options_.merge_after_rows = 4;
  const std::string a = RandomUuid(), b = RandomUuid();
  child_.InsertUser(a, 1 * kMB);
  child_.InsertUser(b, 0);
  Collect();  // seq 1
  auto claimed = store_.ClaimOldestForSend(child_.conn());  // the sender took seq 1
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  const std::string sent_payload = (*claimed)->payload;
  std::map<std::string, uint64_t> expected{{a, 1 * kMB}};
  uint64_t merges = 0;
  int64_t b_online = 0;  // the latest last_online of b, Unix seconds
  for (int i = 1; i <= 30; ++i) {
    child_.AddUsage(a, i * kMB);
    expected[a] += i * kMB;
    if (i % 3 == 0) {
      child_.AddUsage(b, 7 * kMB);
      expected[b] += 7 * kMB;
      child_.Exec(absl::StrCat("UPDATE ", child_.UserTable(), " SET last_online = '2024-05-01 10:",
                               10 + i, ":00' WHERE uuid = '", b, "'"));
      b_online = absl::ToUnixSeconds(
          absl::FromCivil(absl::CivilSecond(2024, 5, 1, 10, 10 + i, 0), PanelTimeZone()));
    }
    Collector collector(&store_, options_);
    const absl::Time now = absl::FromUnixSeconds(1'800'000'000 + i);
    auto r = collector.CollectOnce(child_.conn(), now);
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->rows_merged > 0) {
      ++merges;
      EXPECT_EQ(r->first_seq, 2u);
      EXPECT_EQ(r->last_seq, 2u);
      EXPECT_EQ(r->merged_into, 1u);
      const auto merged = child_.Outbox()[1];
      EXPECT_EQ(merged.seq(), 2u);
      EXPECT_EQ(merged.collected_at().seconds(), absl::ToUnixSeconds(now));
      EXPECT_EQ(merged.usages_size(), i >= 3 ? 2 : 1);
      for (const auto& u : merged.usages()) {
        if (u.uuid() == b) {
          EXPECT_EQ(u.last_online().seconds(), b_online);
        }
      }
    }
    auto rows = store_.OldestOutbox(child_.conn(), 100);
    ASSERT_TRUE(rows.ok());
    EXPECT_LE(rows->size(), 4u);
    ASSERT_FALSE(rows->empty());
    EXPECT_EQ((*rows)[0].payload, sent_payload);
    for (size_t k = 0; k < rows->size(); ++k) EXPECT_EQ((*rows)[k].seq, k + 1);
    EXPECT_EQ(store_.ReadMeta(child_.conn())->next_seq, rows->size() + 1);
    EXPECT_EQ(child_.OutboxBytes(), expected);
  }
  EXPECT_GE(merges, 9u);
  EXPECT_EQ(store_.ReadSendProgress(child_.conn())->outbox_merges, merges);
}

// A merge never builds a report above max_usages_per_report: many users
// become as few capped reports as needed, still seq 2, 3, ...
TEST_F(CollectorTest, MergedReportsStayUnderThePerReportCap) {
  options_.merge_after_rows = 3;
  options_.max_usages_per_report = 4;
  std::vector<std::string> users;
  for (int i = 0; i < 6; ++i) {
    users.push_back(RandomUuid());
    child_.InsertUser(users.back(), 0);
  }
  std::map<std::string, uint64_t> expected;
  // Each collect reports one user (one row), in turn.
  for (int i = 0; i < 12; ++i) {
    const std::string& u = users[i % users.size()];
    child_.AddUsage(u, (i + 1) * kMB);
    expected[u] += (i + 1) * kMB;
    Collect();
    auto outbox = child_.Outbox();
    EXPECT_LE(outbox.size(), 3u);
    for (size_t k = 0; k < outbox.size(); ++k) {
      EXPECT_EQ(outbox[k].seq(), k + 1);
      EXPECT_LE(outbox[k].usages_size(), 4);
    }
    EXPECT_EQ(child_.OutboxBytes(), expected);
  }
}

}  // namespace
}  // namespace hsync::reporter
