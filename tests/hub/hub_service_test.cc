// The hub binary's gRPC surface over a real socket: authentication, every
// bad-input case with its status code and nothing journaled, acks and
// duplicates, GetStatus/GetRoster access rules, health as a prober sees it,
// reflection as grpcurl uses it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

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
  EXPECT_EQ(status->audit_max_bytes(), uint64_t{1} << 30);  // [journal] audit_max_bytes default
  EXPECT_EQ(status->rollback_refusals(), 0u);
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

// A hub of its own (restarted, and its node figures must not mix with the suite's).
class HubJournalGuardsTest : public ::testing::Test {
 protected:
  void Start(HubSetup setup) {
    setup.node_tokens = MakeNodeTokens(1);
    bearer_ = absl::StrCat("Bearer ", setup.node_tokens.at("node-0"));
    auto hub = HubProcess::Start(setup);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = *std::move(hub);
  }

  // `users` users with 1000, 1001, ... bytes; no collected_at, so the same
  // arguments give the same report.
  static UsageReport Report(uint64_t stream, uint64_t seq, int users) {
    UsageReport report;
    report.set_node_id("node-0");
    report.set_stream_id(stream);
    report.set_seq(seq);
    for (int i = 0; i < users; ++i) {
      auto* usage = report.add_usages();
      usage->set_uuid(TestUserUuid(i, 0x6b));
      usage->set_bytes(1000 + i);
    }
    return report;
  }

  grpc::Status Send(const UsageReport& report, ReportAck* ack) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", bearer_);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    return hub_->Stub()->ReportUsage(&context, report, ack);
  }

  HubStatus MustStatus() {
    absl::StatusOr<HubStatus> status = hub_->Status();
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? *status : HubStatus();
  }

  // What `hiddify-sync-hub status` prints for this hub.
  std::string StatusCommandOutput() {
    const std::string out = absl::StrCat(hub_->dir(), "/status.out");
    std::remove(out.c_str());
    auto run = hsync::testing::ChildProcess::Spawn(
        {hsync::testing::BuiltBinary("hiddify-sync-hub"), "status", "--config",
         hub_->config_path()},
        out);
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return "";
    absl::StatusOr<int> code = run->Wait(absl::Seconds(20));
    EXPECT_TRUE(code.ok() && *code != 2) << code.status();  // 1 = degraded (no parent) is fine
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  static size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  std::string bearer_;
  std::unique_ptr<HubProcess> hub_;
};

TEST_F(HubJournalGuardsTest, ARolledBackReporterIsRefusedWithAlreadyExistsAlsoAfterARestart) {
  Start(HubSetup());
  const UsageReport first = Report(21, 1, 3), second = Report(21, 2, 3);
  ReportAck ack;
  ASSERT_TRUE(Send(first, &ack).ok());
  ASSERT_TRUE(Send(second, &ack).ok());
  ASSERT_TRUE(Send(second, &ack).ok());  // an honest resend
  EXPECT_EQ(ack.acked_seq(), 2u);

  // Restored from a snapshot taken after seq 1: seq 2 again, new traffic.
  UsageReport rolled_back = second;
  rolled_back.mutable_usages(0)->set_bytes(777'777);
  for (int attempt = 0; attempt < 2; ++attempt) {
    grpc::Status refused = Send(rolled_back, &ack);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS) << refused.error_message();
    EXPECT_EQ(refused.error_message(),
              "stream 21 seq 2 was accepted before with a different payload: this reporter's "
              "state was rolled back (snapshot or restore); it must start a new stream");
  }
  const uint64_t two_reports = 2 * (1000 + 1001 + 1002);
  HubStatus status = MustStatus();
  EXPECT_EQ(status.rollback_refusals(), 2u);
  EXPECT_EQ(status.pending_bytes(), two_reports);  // nothing of it journaled
  ASSERT_EQ(status.nodes_size(), 1);
  EXPECT_EQ(status.nodes(0).reports_accepted(), 2u);
  EXPECT_EQ(status.nodes(0).duplicates(), 1u);  // the honest resend only
  // One warning for the stream, not one per refusal, and no error.
  const std::string log = hub_->ReadLog();
  EXPECT_EQ(Count(log, "was accepted before with a different payload"), 1u) << log;
  EXPECT_EQ(Count(log, "accepting a report of node"), 0u) << log;
  EXPECT_THAT(StatusCommandOutput(), HasSubstr("rolled back:    2 reports refused since start"));

  // The hashes are durable: a restarted hub still tells the two apart.
  ASSERT_TRUE(hub_->Terminate().ok());
  ASSERT_TRUE(hub_->Restart().ok());
  EXPECT_EQ(Send(rolled_back, &ack).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Send(second, &ack).ok());
  EXPECT_EQ(ack.acked_seq(), 2u);
  status = MustStatus();
  EXPECT_EQ(status.rollback_refusals(), 1u);  // since this start
  EXPECT_EQ(status.pending_bytes(), two_reports);

  // What the reporter does next: a new stream; its bytes count.
  UsageReport fresh = rolled_back;
  fresh.set_stream_id(22);
  fresh.set_seq(1);
  ASSERT_TRUE(Send(fresh, &ack).ok());
  EXPECT_EQ(ack.acked_seq(), 1u);
  EXPECT_EQ(MustStatus().pending_bytes(), two_reports + 777'777 + 1001 + 1002);
}

TEST_F(HubJournalGuardsTest, TheAuditStaysUnderAuditMaxBytesAndStatusShowsIt) {
  HubSetup setup;
  constexpr uint64_t kMax = 20'000;
  setup.journal_toml = absl::StrCat("audit_max_bytes = ", kMax, "\n");
  Start(setup);
  const uint64_t report_bytes = Report(31, 1, 50).ByteSizeLong();
  ASSERT_GT(30 * report_bytes, 3 * kMax);
  ReportAck ack;
  for (uint64_t seq = 1; seq <= 30; ++seq) ASSERT_TRUE(Send(Report(31, seq, 50), &ack).ok());

  // Pruned in the background; wait for it (only to bound a hang).
  HubStatus status;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    status = MustStatus();
    if (status.audit_bytes() <= kMax) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status.audit_max_bytes(), kMax);
  EXPECT_LE(status.audit_bytes(), kMax);
  EXPECT_GT(status.audit_reports(), 0u);
  EXPECT_LT(status.audit_reports(), 30u);
  EXPECT_EQ(status.audit_bytes(), status.audit_reports() * report_bytes);
  EXPECT_EQ(status.journal_reports(), status.audit_reports());
  EXPECT_THAT(StatusCommandOutput(),
              HasSubstr(absl::StrCat("raw reports:    ", status.audit_reports(), " kept for audit, ",
                                     status.audit_bytes(), " B of at most 20000 B")));
  // Every report's usage is still pending: pruning is about the audit copy only.
  uint64_t per_report = 0;
  for (int i = 0; i < 50; ++i) per_report += 1000 + i;
  EXPECT_EQ(status.pending_bytes(), 30 * per_report);
}

}  // namespace
}  // namespace hsync::hub::testing
