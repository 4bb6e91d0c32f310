// OutboxSender against a SyncHub double on a real socket: order, delete only
// after ack, duplicates after a lost ack, hub away and back, INVALID_ARGUMENT
// kept for the operator, wrong token, reset-mode subtraction on ack, a
// rolled-back state (the hub ahead of it: ALREADY_EXISTS or an ack above any
// seq assigned) restarting the stream without losing a byte, and unsent rows
// merged while the hub is away.
#include "reporter/outbox/outbox_sender.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "reporter/collect/collector.h"
#include "reporter/outbox/hub_channel.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/fake_hub.h"
#include "tests/reporter/state_snapshot.h"
#include "tests/support/child_process.h"

namespace hsync::reporter {
namespace {

using hsync::testing::ChildDb;
using hsync::testing::FakeHub;
using hsync::testing::RandomUuid;
using hsync::testing::StateSnapshot;
using ::testing::HasSubstr;

constexpr char kToken[] = "node-token-1";

class OutboxSenderTest : public ::testing::Test {
 protected:
  OutboxSenderTest() : child_("snd"), store_(child_.state_db(), false) {
    EXPECT_TRUE(store_.EnsureSchema(child_.conn()).ok());
    collect_.node_id = "child-1";
    collect_.panel_database = child_.panel_db();
    user_ = RandomUuid();
    child_.InsertUser(user_, 0);
  }

  // Adds `bytes` of traffic and collects: one more outbox row.
  void TrafficAndCollect(uint64_t bytes) {
    child_.AddUsage(user_, bytes);
    Collector collector(&store_, collect_);
    auto r = collector.CollectOnce(child_.conn(), absl::Now());
    ASSERT_TRUE(r.ok()) << r.status();
  }

  std::unique_ptr<OutboxSender> MakeSender(const std::string& address, const std::string& token,
                                           UsageResetter* resetter = nullptr) {
    HubConfig hub;
    hub.address = address;
    hub.plaintext = true;
    OutboxSenderOptions options;
    options.token = token;
    options.call_timeout = absl::Seconds(3);
    options.retry_initial = absl::Milliseconds(50);
    options.retry_max = absl::Milliseconds(200);
    options.idle_poll = absl::Milliseconds(100);
    return std::make_unique<OutboxSender>(MakeHubChannel(hub), child_.Options(), &store_, resetter,
                                          &board_, options);
  }

  uint64_t Total(const std::map<std::string, uint64_t>& bytes) {
    uint64_t total = 0;
    for (const auto& [uuid, b] : bytes) total += b;
    return total;
  }

  ChildDb child_;
  StateStore store_;
  CollectOptions collect_;
  StatusBoard board_;
  std::string user_;
};

TEST_F(OutboxSenderTest, SendsInSeqOrderAndDeletesOnlyAfterTheAck) {
  auto hub = FakeHub::Start(kToken);
  ASSERT_NE(hub, nullptr);
  for (int i = 1; i <= 3; ++i) TrafficAndCollect(i * 1'000'000);
  auto sender = MakeSender(hub->address(), kToken);
  ASSERT_TRUE(sender->DrainOnce().ok());
  auto accepted = hub->Accepted();
  ASSERT_EQ(accepted.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(accepted[i].seq(), i + 1);
  EXPECT_EQ(hub->BytesByUuid()[user_], 6'000'000u);
  EXPECT_TRUE(child_.Outbox().empty());
  EXPECT_EQ(store_.ReadMeta(child_.conn())->last_acked_seq, 3u);
  auto status = board_.Snapshot();
  EXPECT_EQ(status.last_seq_acked(), 3u);
  EXPECT_EQ(status.outbox_reports(), 0u);
  EXPECT_GT(status.last_ack_at().seconds(), 0);
}

TEST_F(OutboxSenderTest, HubAwayKeepsEverythingThenDrainsInOrder) {
  const int port = hsync::testing::PickFreePort();
  auto sender = MakeSender(absl::StrCat("127.0.0.1:", port), kToken);
  TrafficAndCollect(2'000'000);
  TrafficAndCollect(3'000'000);
  absl::Status down = sender->DrainOnce();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(child_.Outbox().size(), 2u);
  auto status = board_.Snapshot();
  EXPECT_EQ(status.outbox_reports(), 2u);
  EXPECT_EQ(status.outbox_bytes(), 5'000'000u);
  EXPECT_THAT(status.last_error(), HasSubstr("unavailable"));
  TrafficAndCollect(4'000'000);
  auto hub = FakeHub::Start(kToken, port);
  ASSERT_NE(hub, nullptr);
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return sender->DrainOnce().ok(); }, absl::Seconds(15)));
  auto accepted = hub->Accepted();
  ASSERT_EQ(accepted.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(accepted[i].seq(), i + 1);
  EXPECT_EQ(hub->BytesByUuid()[user_], 9'000'000u);
  EXPECT_TRUE(child_.Outbox().empty());
}

TEST_F(OutboxSenderTest, ALostAckIsResolvedByTheHubsDuplicateAck) {
  auto hub = FakeHub::Start(kToken);
  TrafficAndCollect(2'000'000);
  TrafficAndCollect(3'000'000);
  // The previous incarnation sent both (recording that before each send),
  // the hub stored them, the acks were lost.
  child_.Exec(absl::StrCat("UPDATE `", child_.state_db(), "`.send_progress SET highest_sent_seq = 2"));
  {
    auto channel = grpc::CreateChannel(hub->address(), grpc::InsecureChannelCredentials());
    auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
    for (const auto& report : child_.Outbox()) {
      grpc::ClientContext ctx;
      AddHubAuth(ctx, kToken);
      hiddify_sync::v1::ReportAck ack;
      ASSERT_TRUE(stub->ReportUsage(&ctx, report, &ack).ok());
    }
  }
  auto sender = MakeSender(hub->address(), kToken);
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(hub->Accepted().size(), 2u);  // counted once
  EXPECT_EQ(hub->calls(), 3);             // one resend of seq 1, acked up to 2
  EXPECT_TRUE(child_.Outbox().empty());
}

TEST_F(OutboxSenderTest, RejectedReportIsKeptLoggedAndShownNotDropped) {
  auto hub = FakeHub::Start(kToken);
  for (int i = 1; i <= 3; ++i) TrafficAndCollect(2'000'000);
  hub->RejectSeq(2);
  auto sender = MakeSender(hub->address(), kToken);
  absl::Status s = sender->DrainOnce();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  auto outbox = child_.Outbox();
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0].seq(), 2u);
  EXPECT_EQ(outbox[1].seq(), 3u);
  auto status = board_.Snapshot();
  EXPECT_THAT(status.last_error(), HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(status.last_error(), HasSubstr("seq 2"));
  EXPECT_THAT(status.last_error(), HasSubstr("kept"));
  EXPECT_EQ(status.outbox_reports(), 2u);
  hub->RejectSeq(0);  // the operator fixed it
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(hub->BytesByUuid()[user_], 6'000'000u);
}

TEST_F(OutboxSenderTest, WrongTokenIsAClearErrorAndLosesNothing) {
  auto hub = FakeHub::Start(kToken);
  TrafficAndCollect(2'000'000);
  auto sender = MakeSender(hub->address(), "wrong-token");
  absl::Status s = sender->DrainOnce();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("token"));
  EXPECT_THAT(board_.Snapshot().last_error(), HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(board_.Snapshot().last_error(), ::testing::Not(HasSubstr("wrong-token")));
  EXPECT_EQ(child_.Outbox().size(), 1u);
  EXPECT_EQ(hub->unauthenticated_calls(), 1);
  auto fixed = MakeSender(hub->address(), kToken);
  ASSERT_TRUE(fixed->DrainOnce().ok());
  EXPECT_EQ(hub->BytesByUuid()[user_], 2'000'000u);
}

TEST_F(OutboxSenderTest, ResetModeSubtractsOnAckInTheSameTransaction) {
  auto hub = FakeHub::Start(kToken);
  TrafficAndCollect(5'000'000);
  child_.AddUsage(user_, 111);  // after the collect
  UsageResetter resetter(&store_, child_.panel_db());
  auto sender = MakeSender(hub->address(), kToken, &resetter);
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(child_.Usage(user_), 111u);
  EXPECT_TRUE(child_.Outbox().empty());
  // A resend after a crash cannot subtract twice: the row is gone.
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(child_.Usage(user_), 111u);
}

// A VM snapshot taken after seq 1, two more reports sent, then the snapshot
// restored (state and panel counters): the reporter's next report reuses
// seq 2, which the hub holds with other bytes. The hub refuses it
// (ALREADY_EXISTS); the reporter restarts the stream with that report.
TEST_F(OutboxSenderTest, RolledBackStateRefusedWithAlreadyExistsRestartsTheStreamKeepingTheBytes) {
  auto hub = FakeHub::Start(kToken);
  hub->RefuseChangedPayloads(true);
  auto sender = MakeSender(hub->address(), kToken);
  TrafficAndCollect(1'000'000);
  ASSERT_TRUE(sender->DrainOnce().ok());
  StateSnapshot snapshot(child_.state_db(), child_.panel_db());
  ASSERT_TRUE(snapshot.Take(child_.conn()).ok());
  const uint64_t old_stream = store_.ReadMeta(child_.conn())->stream_id;
  TrafficAndCollect(2'000'000);
  ASSERT_TRUE(sender->DrainOnce().ok());
  TrafficAndCollect(3'000'000);
  ASSERT_TRUE(sender->DrainOnce().ok());
  ASSERT_EQ(hub->BytesByUuid()[user_], 6'000'000u);

  ASSERT_TRUE(snapshot.Restore(child_.conn()).ok());
  ASSERT_EQ(child_.Usage(user_), 1'000'000u);
  TrafficAndCollect(4'000'000);  // seq 2 again, 4 MB
  ASSERT_EQ(child_.Outbox().size(), 1u);
  ASSERT_EQ(child_.Outbox()[0].seq(), 2u);
  absl::Status drained = sender->DrainOnce();
  ASSERT_TRUE(drained.ok()) << drained;
  EXPECT_EQ(hub->refused_calls(), 1);
  // 1 + 2 + 3 MB before the restore, the 4 MB after it: nothing lost.
  EXPECT_EQ(hub->BytesByUuid()[user_], 10'000'000u);
  EXPECT_TRUE(child_.Outbox().empty());
  auto meta = store_.ReadMeta(child_.conn());
  EXPECT_NE(meta->stream_id, old_stream);
  EXPECT_EQ(meta->next_seq, 2u);
  EXPECT_EQ(meta->last_acked_seq, 1u);
  const auto accepted = hub->Accepted();
  ASSERT_EQ(accepted.size(), 4u);
  EXPECT_EQ(accepted.back().stream_id(), meta->stream_id);
  EXPECT_EQ(accepted.back().seq(), 1u);
  EXPECT_EQ(accepted.back().usages(0).bytes(), 4'000'000u);
  auto status = board_.Snapshot();
  EXPECT_EQ(status.stream_restarts(), 1u);
  EXPECT_EQ(status.stream_id(), meta->stream_id);
  EXPECT_EQ(store_.ReadSendProgress(child_.conn())->stream_restarts, 1u);
  // Later reports continue the new stream.
  TrafficAndCollect(5'000'000);
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(hub->BytesByUuid()[user_], 15'000'000u);
  EXPECT_EQ(hub->Accepted().back().seq(), 2u);
  EXPECT_EQ(board_.Snapshot().stream_restarts(), 1u);
}

// Snapshot with seq 1 not yet sent (hub away); after the restore the resend
// of seq 1 is acked with 3, above the 2 seqs this state ever assigned: seq 1
// is the hub's (same content: deleted), seq 2 (written after the restore,
// never sent) is refused by the hub's content check and moves to a new
// stream instead of being deleted by that ack.
TEST_F(OutboxSenderTest, AckAboveTheHighestSeqAssignedRestartsTheStreamWithTheUnsentRows) {
  const int port = hsync::testing::PickFreePort();
  auto sender = MakeSender(absl::StrCat("127.0.0.1:", port), kToken);
  TrafficAndCollect(1'000'000);
  StateSnapshot snapshot(child_.state_db(), child_.panel_db());
  ASSERT_TRUE(snapshot.Take(child_.conn()).ok());
  auto hub = FakeHub::Start(kToken, port);
  ASSERT_NE(hub, nullptr);
  hub->RefuseChangedPayloads(true);
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return sender->DrainOnce().ok(); }, absl::Seconds(15)));
  TrafficAndCollect(2'000'000);
  TrafficAndCollect(3'000'000);
  ASSERT_TRUE(sender->DrainOnce().ok());
  ASSERT_EQ(hub->BytesByUuid()[user_], 6'000'000u);

  ASSERT_TRUE(snapshot.Restore(child_.conn()).ok());
  TrafficAndCollect(4'000'000);  // seq 2: 4 MB, never sent
  ASSERT_EQ(child_.Outbox().size(), 2u);
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(hub->BytesByUuid()[user_], 10'000'000u);
  EXPECT_TRUE(child_.Outbox().empty());
  EXPECT_EQ(board_.Snapshot().stream_restarts(), 1u);
  const auto accepted = hub->Accepted();
  ASSERT_EQ(accepted.size(), 4u);
  EXPECT_EQ(accepted.back().seq(), 1u);
  EXPECT_NE(accepted.back().stream_id(), accepted.front().stream_id());
}

// Two reports were waiting when the snapshot was taken, and the lost timeline
// delivered both. After the restore the first resend is acked above every seq
// this state assigned; the second is still resent in the old stream (the hub
// holds it as it is: deleted, not moved), and only then does a new stream
// start. Moving it at once would count its 2 MB twice.
TEST_F(OutboxSenderTest, ReportsTheLostTimelineDeliveredAreNotCountedTwice) {
  const int port = hsync::testing::PickFreePort();
  auto sender = MakeSender(absl::StrCat("127.0.0.1:", port), kToken);
  TrafficAndCollect(1'000'000);
  TrafficAndCollect(2'000'000);
  StateSnapshot snapshot(child_.state_db(), child_.panel_db());
  ASSERT_TRUE(snapshot.Take(child_.conn()).ok());
  auto hub = FakeHub::Start(kToken, port);
  ASSERT_NE(hub, nullptr);
  hub->RefuseChangedPayloads(true);
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return sender->DrainOnce().ok(); }, absl::Seconds(15)));
  TrafficAndCollect(3'000'000);
  ASSERT_TRUE(sender->DrainOnce().ok());
  ASSERT_EQ(hub->BytesByUuid()[user_], 6'000'000u);

  ASSERT_TRUE(snapshot.Restore(child_.conn()).ok());
  ASSERT_EQ(child_.Outbox().size(), 2u);
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(hub->BytesByUuid()[user_], 6'000'000u);  // both were the hub's already
  EXPECT_TRUE(child_.Outbox().empty());
  EXPECT_EQ(board_.Snapshot().stream_restarts(), 1u);
  TrafficAndCollect(4'000'000);
  ASSERT_TRUE(sender->DrainOnce().ok());
  EXPECT_EQ(hub->BytesByUuid()[user_], 10'000'000u);
  EXPECT_EQ(hub->refused_calls(), 0);
  const auto accepted = hub->Accepted();
  EXPECT_EQ(accepted.back().seq(), 1u);
  EXPECT_NE(accepted.back().stream_id(), accepted.front().stream_id());
}

// An ack of more than was sent deletes only what was sent: a row written
// after the send and never sent stays (and, the hub being ahead, moves).
TEST_F(OutboxSenderTest, AckAboveTheSeqSentNeverDeletesRowsThatWereNotSent) {
  auto hub = FakeHub::Start(kToken);
  hub->RefuseChangedPayloads(true);
  TrafficAndCollect(1'000'000);
  auto sender = MakeSender(hub->address(), kToken);
  // The hub already holds seqs 1..3 of this stream (another incarnation).
  {
    auto channel = grpc::CreateChannel(hub->address(), grpc::InsecureChannelCredentials());
    auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
    hiddify_sync::v1::UsageReport report = child_.Outbox()[0];
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      report.set_seq(seq);
      grpc::ClientContext ctx;
      AddHubAuth(ctx, kToken);
      hiddify_sync::v1::ReportAck ack;
      ASSERT_TRUE(stub->ReportUsage(&ctx, report, &ack).ok());
    }
  }
  TrafficAndCollect(2'000'000);  // seq 2, not sent
  auto claimed = store_.ClaimOldestForSend(child_.conn());
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  EXPECT_EQ((*claimed)->seq, 1u);
  EXPECT_EQ(store_.ReadSendProgress(child_.conn())->highest_sent_seq, 1u);
  ASSERT_TRUE(sender->DrainOnce().ok());
  // 3 x 1 MB from the other incarnation, then the 2 MB row in a new stream.
  EXPECT_EQ(hub->BytesByUuid()[user_], 5'000'000u);
  EXPECT_EQ(board_.Snapshot().stream_restarts(), 1u);
  EXPECT_TRUE(child_.Outbox().empty());
}

// The hub away for 100 collects with merge_after_rows = 5: the outbox never
// holds more than 5 rows, the row the sender already tried stays byte for
// byte what it was (the hub may have it), and when the hub is back it
// receives exactly the bytes, in seqs without gaps.
TEST_F(OutboxSenderTest, HubAwayForAHundredCollectsMergesUnsentRowsAndDeliversExactly) {
  collect_.merge_after_rows = 5;
  const std::string other = RandomUuid();
  child_.InsertUser(other, 0);
  const int port = hsync::testing::PickFreePort();
  auto sender = MakeSender(absl::StrCat("127.0.0.1:", port), kToken);
  uint64_t generated = 0;
  std::string first_payload;
  size_t max_rows = 0;
  for (int i = 1; i <= 100; ++i) {
    child_.AddUsage(other, 1'000'000 + i);
    generated += 1'000'000 + i;
    TrafficAndCollect(2'000'000 + i);
    generated += 2'000'000 + i;
    EXPECT_EQ(sender->DrainOnce().code(), absl::StatusCode::kUnavailable);
    auto rows = store_.OldestOutbox(child_.conn(), 1000);
    ASSERT_TRUE(rows.ok());
    max_rows = std::max(max_rows, rows->size());
    if (first_payload.empty()) first_payload = (*rows)[0].payload;
    EXPECT_EQ((*rows)[0].seq, 1u);
    EXPECT_EQ((*rows)[0].payload, first_payload) << "a row the hub may hold was changed";
    for (size_t k = 0; k < rows->size(); ++k) EXPECT_EQ((*rows)[k].seq, k + 1);
  }
  EXPECT_LE(max_rows, 5u);
  EXPECT_EQ(Total(child_.OutboxBytes()), generated);
  const uint64_t merges = store_.ReadSendProgress(child_.conn())->outbox_merges;
  EXPECT_GE(merges, 20u);
  std::cout << "100 collects, hub away: at most " << max_rows << " outbox rows, " << merges
            << " merges\n";

  auto hub = FakeHub::Start(kToken, port);
  ASSERT_NE(hub, nullptr);
  hub->RefuseChangedPayloads(true);
  ASSERT_TRUE(hsync::testing::WaitFor([&] { return sender->DrainOnce().ok(); }, absl::Seconds(15)));
  EXPECT_EQ(Total(hub->BytesByUuid()), generated);
  const auto accepted = hub->Accepted();
  for (size_t k = 0; k < accepted.size(); ++k) EXPECT_EQ(accepted[k].seq(), k + 1);
  EXPECT_EQ(accepted[0].SerializeAsString(), first_payload);
  EXPECT_EQ(store_.ReadMeta(child_.conn())->next_seq, accepted.size() + 1);
  EXPECT_EQ(board_.Snapshot().stream_restarts(), 0u);
}

TEST_F(OutboxSenderTest, BackgroundThreadSendsWhenWoken) {
  auto hub = FakeHub::Start(kToken);
  auto sender = MakeSender(hub->address(), kToken);
  sender->Start();
  TrafficAndCollect(2'000'000);
  sender->Wake();
  EXPECT_TRUE(hsync::testing::WaitFor([&] { return hub->Accepted().size() == 1; }, absl::Seconds(5)));
  TrafficAndCollect(2'000'000);
  sender->Wake();
  EXPECT_TRUE(hsync::testing::WaitFor([&] { return hub->Accepted().size() == 2; }, absl::Seconds(5)));
  EXPECT_TRUE(hsync::testing::WaitFor([&] { return child_.Outbox().empty(); }, absl::Seconds(5)));
  sender->Stop();
}

}  // namespace
}  // namespace hsync::reporter
