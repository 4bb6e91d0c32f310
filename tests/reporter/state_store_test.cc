// StateStore: schema creation, stream identity, outbox round trip with binary
// payloads, ack deletion, and clear errors when MariaDB or the schema is not
// what it should be.
#include "reporter/state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "reporter/db_session.h"
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
    OutboxRow row{state->stream_id, seq, binary + std::to_string(seq), seq * 100,
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

}  // namespace
}  // namespace hsync::reporter
