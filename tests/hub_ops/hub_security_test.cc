// Refusals at the hub's front door, with certificates made by
// deploy/make-certs.sh and the reporter's own channel code: a wrong CA, an
// expired server certificate, a missing client certificate when required, a
// revoked node, a report carrying another node's node_id, a token-guessing
// peer — each refused with the right status and nothing journaled. And no
// secret (API key, tokens, the parent's admin path) in the hub's log or in
// `status` output over a run with auth failures and parent errors.
#include <netinet/in.h>
#include <signal.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "hub/journal/journal.h"
#include "reporter/outbox/hub_channel.h"
#include "tests/hub_ops/ops_hub.h"
#include "tests/support/child_process.h"
#include "tests/support/metrics_scrape.h"

namespace hsync::hub::testing {
namespace {

using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::ReportAck;
using hiddify_sync::v1::UsageReport;
using ::testing::HasSubstr;
using ::testing::Not;

const std::map<std::string, std::string> kTokens = {
    {"node-0", "tok0-Zq3vN8xW2pL5mK9rT4yB7cF1hJ6dS0aE"},
    {"node-1", "tok1-Yp2uM7wV1oK4lJ8qS3xA6bE0gH5cR9zD"}};

// One CA + hub/client certificates for the whole binary, and a foreign CA.
class Certs {
 public:
  static const Certs& Get() {
    static const Certs* certs = new Certs();
    return *certs;
  }
  std::string dir, other_dir;
  bool ok = false;

 private:
  Certs() {
    const std::string base = hsync::testing::MakeTempDir("hub_security_certs");
    dir = base + "/ca";
    other_dir = base + "/other";
    ok = MakeCerts(dir, {"--client", "node-0"}).ok() && MakeCerts(dir, {"--expired"}).ok() &&
         MakeCerts(other_dir).ok();
  }
};

OpsHubSetup TlsSetup() {
  const Certs& certs = Certs::Get();
  OpsHubSetup setup;
  setup.cert_file = certs.dir + "/hub.pem";
  setup.key_file = certs.dir + "/hub.key";
  setup.node_tokens = kTokens;
  return setup;
}

// The reporter's channel (reporter/outbox/hub_channel.h) to the hub.
std::shared_ptr<grpc::Channel> ReporterChannel(const OpsHub& hub, const std::string& ca_file,
                                               const std::string& client = "") {
  hsync::reporter::HubConfig config;
  config.address = absl::StrCat("localhost:", hub.port());
  config.ca_file = ca_file;
  config.ca_pem = ReadWholeFile(ca_file);
  if (!client.empty()) {
    config.cert_file = client + ".pem";
    config.key_file = client + ".key";
    config.cert_pem = ReadWholeFile(config.cert_file);
    config.key_pem = ReadWholeFile(config.key_file);
  }
  return hsync::reporter::MakeHubChannel(config);
}

UsageReport MakeReport(const std::string& node_id, uint64_t seq = 1) {
  UsageReport report;
  report.set_node_id(node_id);
  report.set_stream_id(4242);
  report.set_seq(seq);
  auto* usage = report.add_usages();
  usage->set_uuid("0000002a-0000-4000-8000-000000000001");
  usage->set_bytes(123456);
  *report.mutable_collected_at() = ToProtoTimestamp(absl::Now());
  return report;
}

grpc::Status Send(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                  const UsageReport& report) {
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  hsync::reporter::AddHubAuth(context, token);
  ReportAck ack;
  return stub->ReportUsage(&context, report, &ack);
}

// GetStatus with node-0's token over a channel the hub accepts.
HubStatus StatusOf(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = hiddify_sync::v1::SyncHub::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  hsync::reporter::AddHubAuth(context, kTokens.at("node-0"));
  HubStatus status;
  grpc::Status rpc = stub->GetStatus(&context, hiddify_sync::v1::GetStatusRequest(), &status);
  EXPECT_TRUE(rpc.ok()) << rpc.error_message();
  return status;
}

void ExpectNothingJournaled(const HubStatus& status) {
  EXPECT_EQ(status.journal_reports(), 0u);
  EXPECT_EQ(status.pending_users(), 0u);
  EXPECT_EQ(status.pending_bytes(), 0u);
  for (const auto& node : status.nodes()) EXPECT_EQ(node.reports_accepted(), 0u) << node.node_id();
}

class HubSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Certs::Get().ok) << "make-certs.sh failed"; }
  const Certs& certs() { return Certs::Get(); }
};

TEST_F(HubSecurityTest, AClientTrustingAnotherCaIsRefusedAndNothingIsJournaled) {
  auto hub = OpsHub::Start(TlsSetup());
  ASSERT_TRUE(hub.ok()) << hub.status();
  const grpc::Status refused =
      Send(ReporterChannel(**hub, certs().other_dir + "/ca.pem"), kTokens.at("node-0"), MakeReport("node-0"));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  auto good = ReporterChannel(**hub, certs().dir + "/ca.pem");
  ExpectNothingJournaled(StatusOf(good));
  // The right CA works (the refusal was about trust, not the hub).
  EXPECT_TRUE(Send(good, kTokens.at("node-0"), MakeReport("node-0")).ok());
  EXPECT_EQ(StatusOf(good).journal_reports(), 1u);
}

TEST_F(HubSecurityTest, AnExpiredServerCertificateIsRefusedByTheClient) {
  OpsHubSetup setup = TlsSetup();
  setup.cert_file = certs().dir + "/hub-expired.pem";
  setup.key_file = certs().dir + "/hub-expired.key";
  auto hub = OpsHub::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  const grpc::Status refused =
      Send(ReporterChannel(**hub, certs().dir + "/ca.pem"), kTokens.at("node-0"), MakeReport("node-0"));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  // Nothing journaled: no client can reach this hub, so read its journal
  // once it is gone.
  const std::string journal = hub->get()->dir() + "/journal.db";
  hub->reset();
  auto opened = Journal::Open(journal);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto stats = (*opened)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reports, 0u);
  EXPECT_EQ(stats->pending_users, 0u);
}

TEST_F(HubSecurityTest, RequiredClientCertificatesRefuseAClientWithoutOne) {
  OpsHubSetup setup = TlsSetup();
  setup.client_ca_file = certs().dir + "/ca.pem";
  setup.require_client_cert = true;
  auto hub = OpsHub::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  const std::string ca = certs().dir + "/ca.pem";
  const grpc::Status refused = Send(ReporterChannel(**hub, ca), kTokens.at("node-0"), MakeReport("node-0"));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  auto with_cert = ReporterChannel(**hub, ca, certs().dir + "/client-node-0");
  ExpectNothingJournaled(StatusOf(with_cert));
  EXPECT_TRUE(Send(with_cert, kTokens.at("node-0"), MakeReport("node-0")).ok());
  // `status` over the operator socket needs neither certificate nor token.
  {
    const std::string log = hub->get()->dir() + "/status-socket.out";
    auto run = hsync::testing::ChildProcess::Spawn(
        {hsync::testing::BuiltBinary("hiddify-sync-hub"), "status", "--config",
         hub->get()->config_path()},
        log);
    ASSERT_TRUE(run.ok());
    EXPECT_NE(*run->Wait(absl::Seconds(20)), 2) << ReadWholeFile(log);
    EXPECT_THAT(ReadWholeFile(log), HasSubstr("node-0: last report"));
  }
  // Over TCP it needs a client certificate too, and says so.
  const std::string token_file = hub->get()->dir() + "/node-0.token";
  std::ofstream(token_file) << kTokens.at("node-0") << "\n";
  const std::string address = absl::StrCat("127.0.0.1:", hub->get()->port());
  {
    const std::string log = hub->get()->dir() + "/status.out";
    auto run = hsync::testing::ChildProcess::Spawn(
        {hsync::testing::BuiltBinary("hiddify-sync-hub"), "status", "--config",
         hub->get()->config_path(), "--address", address, "--token-file", token_file, "--timeout",
         "3s"},
        log);
    ASSERT_TRUE(run.ok());
    EXPECT_EQ(*run->Wait(absl::Seconds(20)), 2);
    EXPECT_THAT(ReadWholeFile(log), HasSubstr("--cert FILE --key FILE"));
  }
  {
    const std::string log = hub->get()->dir() + "/status-cert.out";
    auto run = hsync::testing::ChildProcess::Spawn(
        {hsync::testing::BuiltBinary("hiddify-sync-hub"), "status", "--config",
         hub->get()->config_path(), "--address", address, "--token-file", token_file, "--cert",
         certs().dir + "/client-node-0.pem", "--key", certs().dir + "/client-node-0.key"},
        log);
    ASSERT_TRUE(run.ok());
    const int code = *run->Wait(absl::Seconds(20));
    EXPECT_NE(code, 2) << ReadWholeFile(log);
    EXPECT_THAT(ReadWholeFile(log), HasSubstr("node-0: last report"));
  }
}

TEST_F(HubSecurityTest, RevokedNodesAndReportsForAnotherNodeAreRefused) {
  auto hub = OpsHub::Start(TlsSetup());
  ASSERT_TRUE(hub.ok()) << hub.status();
  auto channel = ReporterChannel(**hub, certs().dir + "/ca.pem");
  // node-1's token, node-0's report (a replayed or forged stream).
  const grpc::Status forged = Send(channel, kTokens.at("node-1"), MakeReport("node-0"));
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::PERMISSION_DENIED) << forged.error_message();
  // Revoke node-1: the config loses its line, SIGHUP.
  std::string config = ReadWholeFile(hub->get()->config_path());
  const size_t line = config.find("node-1 = ");
  ASSERT_NE(line, std::string::npos);
  config.erase(line, config.find('\n', line) - line + 1);
  std::ofstream(hub->get()->config_path()) << config;
  ASSERT_TRUE(hub->get()->Signal(SIGHUP));
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] { return hub->get()->ReadLog().find("nodes reloaded") != std::string::npos; },
      absl::Seconds(10)));
  const grpc::Status revoked = Send(channel, kTokens.at("node-1"), MakeReport("node-1"));
  EXPECT_EQ(revoked.error_code(), grpc::StatusCode::UNAUTHENTICATED) << revoked.error_message();
  ExpectNothingJournaled(StatusOf(channel));
}

// Over a run with wrong tokens, forged node ids and a failing parent, neither
// the hub's log nor `status` shows the API key, a token or the admin path.
TEST_F(HubSecurityTest, NoSecretInLogsStatusOutputOrMetrics) {
  OpsHubSetup setup = TlsSetup();
  const int metrics_port = hsync::testing::PickFreePort();
  setup.metrics_listen = absl::StrCat("127.0.0.1:", metrics_port);
  auto hub = OpsHub::Start(setup);
  ASSERT_TRUE(hub.ok()) << hub.status();
  auto channel = ReporterChannel(**hub, certs().dir + "/ca.pem");
  const std::string guessed = "guessed-token-9f8e7d6c5b4a39281706";
  EXPECT_EQ(Send(channel, guessed, MakeReport("node-0")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Send(channel, kTokens.at("node-1"), MakeReport("node-0")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Send(channel, kTokens.at("node-0"), MakeReport("node-0")).ok());
  // The parent (nothing listens) fails the applier and the poller.
  ASSERT_TRUE(hsync::testing::WaitFor(
      [&] { return !StatusOf(channel).last_parent_error().empty(); }, absl::Seconds(20)));
  const std::string log = hub->get()->dir() + "/status.out";
  auto run = hsync::testing::ChildProcess::Spawn(
      {hsync::testing::BuiltBinary("hiddify-sync-hub"), "status", "--config", hub->get()->config_path()},
      log);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(*run->Wait(absl::Seconds(20)), 1);
  const std::string status_output = ReadWholeFile(log);
  EXPECT_THAT(status_output, HasSubstr("UNREACHABLE"));
  EXPECT_THAT(status_output, HasSubstr("authentication:   1 failed"));
  absl::StatusOr<hsync::testing::Scrape> metrics = hsync::testing::ScrapeMetrics(metrics_port);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->Get("hsync_hub_auth_failures_total"), 1);
  const std::string hub_log = hub->get()->ReadLog();
  for (const std::string& text :
       {status_output, hub_log, StatusOf(channel).DebugString(), metrics->body}) {
    EXPECT_THAT(text, Not(HasSubstr(setup.parent_api_key)));
    EXPECT_THAT(text, Not(HasSubstr("SeCrEt-AdMiN-PaTh")));
    EXPECT_THAT(text, Not(HasSubstr(guessed)));
    for (const auto& [node, token] : kTokens) EXPECT_THAT(text, Not(HasSubstr(token)));
  }
}

}  // namespace
}  // namespace hsync::hub::testing
