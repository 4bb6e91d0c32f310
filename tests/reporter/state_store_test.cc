// StateStore: schema creation, stream identity, outbox round trip with binary
// payloads, ack deletion, and clear errors when MariaDB or the schema is not
// what it should be.
#include "reporter/state/state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "reporter/state/db_session.h"
#include "tests/reporter/child_db.h"

namespace hsync::reporter {
namespace {

using hsync::testing::ChildDb;
using ::testing::HasSubstr;

TEST(StateStoreTest, CreatesSchemaOnceWithARandomStream) {
  ChildDb child("st");
  StateStore store(child.state_db(), false);
  auto first = store.EnsureSchema(child.conn());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_NE(first->stream_id, 0u);
  EXPECT_EQ(first->next_seq, 1u);
  EXPECT_EQ(first->last_acked_seq, 0u);
  EXPECT_FALSE(first->baseline_pending);
  auto again = store.EnsureSchema(child.conn());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stream_id, first->stream_id);

  ChildDb other("st");
  StateStore other_store(other.state_db(), true);
  auto other_state = other_store.EnsureSchema(other.conn());
  ASSERT_TRUE(other_state.ok());
  EXPECT_NE(other_state->stream_id, first->stream_id);
  EXPECT_TRUE(other_state->baseline_pending);
}

TEST(StateStoreTest, OutboxKeepsBinaryPayloadsInOrderAndDeletesOnlyAcked) {
  ChildDb child("st");
  StateStore store(child.state_db(), false);
  auto state = store.EnsureSchema(child.conn());
  ASSERT_TRUE(state.ok());
  std::string binary("\0\x01\xff'\"\\x", 8);
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    OutboxRow row{0, state->stream_id, seq, binary + std::to_string(seq), seq * 100,
                  absl::FromUnixSeconds(1700000000 + static_cast<int64_t>(seq))};
    ASSERT_TRUE(store.AppendOutbox(child.conn(), row).ok());
  }
  auto rows = store.OldestOutbox(child.conn(), 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*rows)[i].seq, i + 1);
    EXPECT_EQ((*rows)[i].payload, binary + std::to_string(i + 1));
  }
  auto stats = store.Stats(child.conn());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reports, 4u);
  EXPECT_EQ(stats->bytes, 1000u);
  EXPECT_EQ(stats->oldest_at, absl::FromUnixSeconds(1700000001));
  auto deleted = store.DeleteAcked(child.conn(), state->stream_id, 2);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2u);
  EXPECT_EQ(store.DeleteAcked(child.conn(), state->stream_id + 1, 100).value_or(99), 0u);
  rows = store.OldestOutbox(child.conn(), 10);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].seq, 3u);
  EXPECT_EQ(store.ReadMeta(child.conn())->last_acked_seq, 2u);
}

TEST(StateStoreTest, LostWatermarkTableIsRecreatedWithABaseline) {
  ChildDb child("st");
  StateStore store(child.state_db(), true);
  auto state = store.EnsureSchema(child.conn());
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(store.ClearBaselinePending(child.conn()).ok());
  child.Exec(absl::StrCat("DROP TABLE `", child.state_db(), "`.watermark"));
  auto again = store.EnsureSchema(child.conn());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->stream_id, state->stream_id);
  EXPECT_TRUE(again->baseline_pending);
}

TEST(StateStoreTest, NewerSchemaVersionIsRefused) {
  ChildDb child("st");
  StateStore store(child.state_db(), false);
  ASSERT_TRUE(store.EnsureSchema(child.conn()).ok());
  child.Exec(absl::StrCat("UPDATE `", child.state_db(), "`.meta SET schema_version = 99"));
  auto again = store.EnsureSchema(child.conn());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("version 99"));
}

TEST(StateStoreTest, UnreachableMariaDbIsAClearErrorNamingTheSocket) {
  MariaDbOptions options;
  options.unix_socket = "/nonexistent/mysqld.sock";
  options.connect_timeout = absl::Seconds(1);
  DbSession session(options);
  auto conn = session.Get();
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(conn.status().message()), HasSubstr("/nonexistent/mysqld.sock"));
}

TEST(StateStoreTest, DroppedStateTablesGiveNotFoundThenANewStream) {
  ChildDb child("st");
  StateStore store(child.state_db(), false);
  auto state = store.EnsureSchema(child.conn());
  ASSERT_TRUE(state.ok());
  child.Exec(absl::StrCat("DROP DATABASE `", child.state_db(), "`"));
  auto locked = store.LockMeta(child.conn());
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.status().code(), absl::StatusCode::kNotFound);
  auto fresh = store.EnsureSchema(child.conn());
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->stream_id, state->stream_id);
}

// A state from before send_progress (or its unsubtracted column): every seq
// written counts as sent, so nothing already written can be merged.
TEST(StateStoreTest, MigrationCountsEveryWrittenSeqAsSent) {
  ChildDb child("st");
  StateStore store(child.state_db(), false);
  ASSERT_TRUE(store.EnsureSchema(child.conn()).ok());
  child.Exec(absl::StrCat("DROP TABLE `", child.state_db(), "`.send_progress"));
  child.Exec(absl::StrCat("ALTER TABLE `", child.state_db(), "`.watermark DROP COLUMN unsubtracted_bytes"));
  child.Exec(absl::StrCat("UPDATE `", child.state_db(), "`.meta SET next_seq = 8"));
  auto again = store.EnsureSchema(child.conn());
  ASSERT_TRUE(again.ok()) << again.status();
  auto progress = store.ReadSendProgress(child.conn());
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->stream_id, again->stream_id);
  EXPECT_EQ(progress->highest_sent_seq, 7u);
  EXPECT_EQ(progress->stream_restarts, 0u);
  EXPECT_EQ(child.CountRows(absl::StrCat("information_schema.COLUMNS WHERE TABLE_SCHEMA = '",
                                         child.state_db(), "' AND COLUMN_NAME = 'unsubtracted_bytes'")),
            1u);
  // Idempotent: a second start keeps what the sender recorded.
  child.Exec(absl::StrCat("UPDATE `", child.state_db(), "`.send_progress SET highest_sent_seq = 9"));
  ASSERT_TRUE(store.EnsureSchema(child.conn()).ok());
  EXPECT_EQ(store.ReadSendProgress(child.conn())->highest_sent_seq, 9u);
}

TEST(StateStoreTest, ClaimRecordsTheSeqBeforeItLeaves) {
  ChildDb child("st");
  StateStore store(child.state_db(), false);
  auto state = store.EnsureSchema(child.conn());
  ASSERT_TRUE(state.ok());
  auto none = store.ClaimOldestForSend(child.conn());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    ASSERT_TRUE(store.AppendOutbox(child.conn(), OutboxRow{0, state->stream_id, seq, "p", 1, absl::Now()}).ok());
  }
  auto claimed = store.ClaimOldestForSend(child.conn());
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  EXPECT_EQ((*claimed)->seq, 1u);
  EXPECT_EQ(store.ReadSendProgress(child.conn())->highest_sent_seq, 1u);
  ASSERT_TRUE(store.DeleteAcked(child.conn(), state->stream_id, 1).ok());
  claimed = store.ClaimOldestForSend(child.conn());
  EXPECT_EQ((*claimed)->seq, 2u);
  EXPECT_EQ(store.ReadSendProgress(child.conn())->highest_sent_seq, 2u);
}

// A restart moves every unacknowledged row into a new stream, renumbered
// from 1, payload rewritten only in stream_id/seq; all in the caller's
// transaction (a rollback leaves everything as it was).
TEST(StateStoreTest, RestartStreamRenumbersTheRowsIntoANewStreamKeepingTheirBytes) {
  ChildDb child("st");
  StateStore store(child.state_db(), false);
  auto state = store.EnsureSchema(child.conn());
  ASSERT_TRUE(state.ok());
  for (uint64_t seq = 4; seq <= 6; ++seq) {
    hiddify_sync::v1::UsageReport report;
    report.set_node_id("n");
    report.set_stream_id(state->stream_id);
    report.set_seq(seq);
    auto* u = report.add_usages();
    u->set_uuid("00000000-0000-4000-8000-00000000000" + std::to_string(seq));
    u->set_bytes(seq * 1000);
    OutboxRow row{0, state->stream_id, seq, report.SerializeAsString(), seq * 1000, absl::Now()};
    ASSERT_TRUE(store.AppendOutbox(child.conn(), row).ok());
  }
  ASSERT_TRUE(store.SetNextSeq(child.conn(), 7).ok());
  {
    Transaction tx(child.conn());
    ASSERT_TRUE(store.LockMeta(child.conn()).ok());
    ASSERT_TRUE(store.RestartStream(child.conn()).ok());
    // destroyed without Commit: rolled back
  }
  EXPECT_EQ(store.ReadMeta(child.conn())->stream_id, state->stream_id);
  EXPECT_EQ(store.OldestOutbox(child.conn(), 10)->front().seq, 4u);

  Transaction tx(child.conn());
  ASSERT_TRUE(store.LockMeta(child.conn()).ok());
  auto restart = store.RestartStream(child.conn());
  ASSERT_TRUE(restart.ok()) << restart.status();
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_EQ(restart->old_stream_id, state->stream_id);
  EXPECT_NE(restart->new_stream_id, state->stream_id);
  EXPECT_EQ(restart->rows_moved, 3u);
  auto meta = store.ReadMeta(child.conn());
  EXPECT_EQ(meta->stream_id, restart->new_stream_id);
  EXPECT_EQ(meta->next_seq, 4u);
  EXPECT_EQ(meta->last_acked_seq, 0u);
  auto progress = store.ReadSendProgress(child.conn());
  EXPECT_EQ(progress->stream_id, restart->new_stream_id);
  EXPECT_EQ(progress->highest_sent_seq, 0u);
  EXPECT_EQ(progress->stream_restarts, 1u);
  auto rows = store.OldestOutbox(child.conn(), 10);
  ASSERT_EQ(rows->size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    const OutboxRow& row = (*rows)[i];
    EXPECT_EQ(row.stream_id, restart->new_stream_id);
    EXPECT_EQ(row.seq, i + 1);
    EXPECT_EQ(row.bytes, (i + 4) * 1000);
    hiddify_sync::v1::UsageReport report;
    ASSERT_TRUE(report.ParseFromString(row.payload));
    EXPECT_EQ(report.stream_id(), restart->new_stream_id);
    EXPECT_EQ(report.seq(), i + 1);
    ASSERT_EQ(report.usages_size(), 1);
    EXPECT_EQ(report.usages(0).bytes(), (i + 4) * 1000);
  }
}

}  // namespace
}  // namespace hsync::reporter
