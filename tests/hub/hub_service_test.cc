// The hub binary's gRPC surface over a real socket: authentication, every
// bad-input case with its status code and nothing journaled, acks and
// duplicates, GetStatus/GetRoster access rules, health as a prober sees it,
// reflection as grpcurl uses it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "tests/hub/grpc_probes.h"
#include "tests/hub/hub_harness.h"

namespace hsync::hub::testing {
namespace {

using hiddify_sync::v1::GetRosterRequest;
using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::ReportAck;
using hiddify_sync::v1::RosterSnapshot;
using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::UsageReport;
using hiddify_sync::v1::WatchRosterRequest;
using ::testing::Contains;
using ::testing::HasSubstr;

class HubServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    HubSetup setup;
    setup.node_tokens = MakeNodeTokens(2);
    tokens_ = setup.node_tokens;
    auto hub = HubProcess::Start(setup);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = hub->release();
  }
  static void TearDownTestSuite() {
    delete hub_;
    hub_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(hub_, nullptr); }

  static std::string Token(int node) { return tokens_.at(absl::StrCat("node-", node)); }

  static UsageReport Report(const std::string& node_id, uint64_t stream, uint64_t seq, int users) {
    UsageReport report;
    report.set_node_id(node_id);
    report.set_stream_id(stream);
    report.set_seq(seq);
    for (int i = 0; i < users; ++i) {
      auto* usage = report.add_usages();
      usage->set_uuid(TestUserUuid(i, 0x5e));
      usage->set_bytes(1000 + i);
    }
    return report;
  }

  static grpc::Status Send(const UsageReport& report, const std::string& authorization,
                           ReportAck* ack = nullptr) {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    ReportAck local;
    return hub_->Stub()->ReportUsage(&context, report, ack != nullptr ? ack : &local);
  }

  // The first message (or the final status) of a WatchRoster stream.
  static grpc::Status Watch(const std::string& node_id, const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    WatchRosterRequest request;
    request.set_node_id(node_id);
    auto reader = hub_->Stub()->WatchRoster(&context, request);
    RosterUpdate update;
    while (reader->Read(&update)) {
    }
    return reader->Finish();
  }

  static inline HubProcess* hub_ = nullptr;
  static inline std::map<std::string, std::string> tokens_;
};

// Nothing of node-1 may ever be journaled: every test below sends only bad
// reports as node-1 (or in its name).
void ExpectNothingJournaledForNode1(HubProcess& hub) {
  absl::StatusOr<HubStatus> status = hub.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  for (const auto& node : status->nodes()) {
    if (node.node_id() == "node-1") {
      EXPECT_EQ(node.reports_accepted(), 0u);
      EXPECT_EQ(node.bytes_accepted(), 0u);
      EXPECT_EQ(node.last_seq(), 0u);
    }
  }
}

TEST_F(HubServiceTest, MissingOrWrongTokenIsUnauthenticatedAndJournalsNothing) {
  const UsageReport report = Report("node-1", 77, 1, 3);
  for (const std::string& authorization :
       {std::string(), std::string("Bearer nope"), absl::StrCat("Basic ", Token(1)),
        absl::StrCat("Bearer ", Token(1), "x")}) {
    grpc::Status status = Send(report, authorization);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << authorization;
    EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr(Token(1))));
  }
  ExpectNothingJournaledForNode1(*hub_);
}

TEST_F(HubServiceTest, AReportInAnotherNodesNameIsPermissionDenied) {
  // node-0's token, node-1's name.
  grpc::Status status = Send(Report("node-1", 78, 1, 3), absl::StrCat("Bearer ", Token(0)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("node-0"));
  ExpectNothingJournaledForNode1(*hub_);
}

TEST_F(HubServiceTest, EveryMalformedReportIsInvalidArgumentAndJournalsNothing) {
  const std::string bearer = absl::StrCat("Bearer ", Token(1));
  struct Case {
    std::string name;
    UsageReport report;
    std::string expected;
  };
  std::vector<Case> cases;
  UsageReport r = Report("", 79, 1, 2);
  cases.push_back({"empty node_id", r, "node_id is empty"});
  r = Report("node-1", 0, 1, 2);
  cases.push_back({"stream 0", r, "stream_id"});
  r = Report("node-1", 79, 0, 2);
  cases.push_back({"seq 0", r, "seq"});
  r = Report("node-1", 79, 1, 3);
  r.mutable_usages(1)->set_uuid("6098EA35-8CB2-4A08-BA15-2BE25BC49CB6");
  cases.push_back({"upper-case uuid", r, "usages[1]"});
  r = Report("node-1", 79, 1, 3);
  r.mutable_usages(2)->set_uuid("not-a-uuid");
  cases.push_back({"garbage uuid", r, "usages[2] (uuid \"not-a-uuid\")"});
  r = Report("node-1", 79, 1, 3);
  r.mutable_usages(2)->set_uuid(r.usages(0).uuid());
  cases.push_back({"duplicate uuid", r, "duplicate uuid"});
  r = Report("node-1", 79, 1, 3);
  r.mutable_usages(0)->set_bytes((uint64_t{1} << 50) + 1);
  cases.push_back({"over 1 PiB", r, "1 PiB"});
  r = Report("node-1", 79, 1, 3);
  r.mutable_usages(0)->mutable_last_online()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 7 * 86400);
  cases.push_back({"last_online in the future", r, "last_online"});
  cases.push_back({"too many usages", Report("node-1", 79, 1, 100'001), "too many usages"});
  for (const Case& c : cases) {
    grpc::Status status = Send(c.report, bearer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(status.error_message(), HasSubstr(c.expected)) << c.name;
  }
  ExpectNothingJournaledForNode1(*hub_);
}

TEST_F(HubServiceTest, GoodReportIsAckedAndADuplicateGetsTheSameAck) {
  const std::string bearer = absl::StrCat("Bearer ", Token(0));
  ReportAck ack;
  ASSERT_TRUE(Send(Report("node-0", 5, 1, 4), bearer, &ack).ok());
  EXPECT_EQ(ack.acked_seq(), 1u);
  ASSERT_TRUE(Send(Report("node-0", 5, 2, 4), bearer, &ack).ok());
  EXPECT_EQ(ack.acked_seq(), 2u);
  ASSERT_TRUE(Send(Report("node-0", 5, 1, 4), bearer, &ack).ok());  // late retry of seq 1
  EXPECT_EQ(ack.acked_seq(), 2u);
  absl::StatusOr<HubStatus> status = hub_->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  bool found = false;
  for (const auto& node : status->nodes()) {
    if (node.node_id() != "node-0") continue;
    found = true;
    EXPECT_EQ(node.stream_id(), 5u);
    EXPECT_EQ(node.last_seq(), 2u);
    EXPECT_EQ(node.reports_accepted(), 2u);
    EXPECT_EQ(node.duplicates(), 1u);
    EXPECT_EQ(node.bytes_accepted(), 2u * (1000 + 1001 + 1002 + 1003));
    EXPECT_TRUE(node.has_last_report_at());
  }
  EXPECT_TRUE(found);
  // The parent is unreachable: the bytes wait in the journal.
  EXPECT_EQ(status->pending_bytes(), 2u * (1000 + 1001 + 1002 + 1003));
  EXPECT_EQ(status->pending_users(), 4u);
  EXPECT_FALSE(status->parent_reachable());
  EXPECT_FALSE(status->last_parent_error().empty());
}

TEST_F(HubServiceTest, StatusListsConfiguredNodesAndTheHubsVersion) {
  absl::StatusOr<HubStatus> status = hub_->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  std::vector<std::string> ids;
  for (const auto& node : status->nodes()) ids.push_back(node.node_id());
  EXPECT_THAT(ids, Contains("node-0"));
  EXPECT_THAT(ids, Contains("node-1"));
  EXPECT_FALSE(status->version().empty());
  EXPECT_TRUE(status->has_started_at());
  EXPECT_EQ(status->roster_version(), 0u);  // never read the parent
}

TEST_F(HubServiceTest, OverTcpStatusAndRosterNeedAValidTokenEvenFromLoopback) {
  HubStatus status;
  grpc::ClientContext wrong;
  wrong.AddMetadata("authorization", "Bearer wrong");
  EXPECT_EQ(hub_->Stub()->GetStatus(&wrong, {}, &status).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext no_token;  // 127.0.0.1, no token: refused
  EXPECT_EQ(hub_->Stub()->GetStatus(&no_token, {}, &status).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext with_token;
  AddBearer(&with_token, Token(0));
  EXPECT_TRUE(hub_->Stub()->GetStatus(&with_token, {}, &status).ok());
  RosterSnapshot snapshot;
  grpc::ClientContext roster_no_token;
  EXPECT_EQ(hub_->Stub()->GetRoster(&roster_no_token, GetRosterRequest(), &snapshot).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext roster_with_token;
  AddBearer(&roster_with_token, Token(1));
  grpc::Status roster = hub_->Stub()->GetRoster(&roster_with_token, GetRosterRequest(), &snapshot);
  EXPECT_TRUE(roster.ok()) << roster.error_message();
  // The operator socket needs no token.
  grpc::ClientContext operator_context;
  roster = hub_->OperatorStub()->GetRoster(&operator_context, GetRosterRequest(), &snapshot);
  EXPECT_TRUE(roster.ok()) << roster.error_message();
  EXPECT_EQ(snapshot.users_size(), 0);
}

TEST_F(HubServiceTest, WatchRosterChecksTokenAndNode) {
  EXPECT_EQ(Watch("node-1", "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Watch("node-1", "Bearer nope").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Watch("node-1", absl::StrCat("Bearer ", Token(0))).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Watch("", absl::StrCat("Bearer ", Token(0))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // A valid stream stays open (nothing to send before the first roster read).
  EXPECT_EQ(Watch("node-0", absl::StrCat("Bearer ", Token(0))).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(HubServiceTest, HealthAnswersServingLikeAProberExpects) {
  absl::StatusOr<int> overall = HealthCheck(hub_->channel(), "");
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_EQ(*overall, probes::HealthCheckResponse::SERVING);
  absl::StatusOr<int> service = HealthCheck(hub_->channel(), "hiddify_sync.v1.SyncHub");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(*service, probes::HealthCheckResponse::SERVING);
  absl::StatusOr<int> unknown = HealthCheck(hub_->channel(), "no.such.Service");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(HubServiceTest, ReflectionListsAndDescribesTheServiceLikeGrpcurl) {
  ReflectionDescriptorDatabase database(hub_->channel());
  ASSERT_TRUE(database.status().ok()) << database.status();
  absl::StatusOr<std::vector<std::string>> services = database.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("hiddify_sync.v1.SyncHub"));
  EXPECT_THAT(*services, Contains("grpc.health.v1.Health"));
  EXPECT_THAT(*services, Contains("grpc.reflection.v1alpha.ServerReflection"));

  // `grpcurl describe hiddify_sync.v1.SyncHub`: descriptors built from the server's answers.
  google::protobuf::DescriptorPool pool(&database);
  const google::protobuf::ServiceDescriptor* service = pool.FindServiceByName("hiddify_sync.v1.SyncHub");
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->method_count(), 4);
  const google::protobuf::MethodDescriptor* watch = service->FindMethodByName("WatchRoster");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->server_streaming());
  EXPECT_FALSE(watch->client_streaming());
  EXPECT_EQ(watch->output_type()->full_name(), "hiddify_sync.v1.RosterUpdate");
  const google::protobuf::MethodDescriptor* report = service->FindMethodByName("ReportUsage");
  ASSERT_NE(report, nullptr);
  EXPECT_EQ(report->input_type()->full_name(), "hiddify_sync.v1.UsageReport");
  const google::protobuf::Descriptor* usage = report->input_type();
  ASSERT_NE(usage->FindFieldByName("stream_id"), nullptr);
  EXPECT_EQ(usage->FindFieldByName("collected_at")->message_type()->full_name(),
            "google.protobuf.Timestamp");
  const google::protobuf::Descriptor* status = pool.FindMessageTypeByName("hiddify_sync.v1.HubStatus");
  ASSERT_NE(status, nullptr);
  EXPECT_NE(status->FindFieldByName("pending_bytes"), nullptr);
}

}  // namespace
}  // namespace hsync::hub::testing
