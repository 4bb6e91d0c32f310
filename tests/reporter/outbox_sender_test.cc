// OutboxSender against a SyncHub double on a real socket: order, delete only
// after ack, duplicates after a lost ack, hub away and back, INVALID_ARGUMENT
// kept for the operator, wrong token, and reset-mode subtraction on ack.
#include "reporter/outbox_sender.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "reporter/collector.h"
#include "reporter/hub_channel.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/fake_hub.h"
#include "tests/support/child_process.h"

namespace hsync::reporter {
namespace {

using hsync::testing::ChildDb;
using hsync::testing::FakeHub;
using hsync::testing::RandomUuid;
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
  // The previous incarnation sent both, the hub stored them, the acks were lost.
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
