// The reporter's channel to the hub over TLS, with certificates from
// deploy/make-certs.sh: the hub's certificate is verified against ca_file
// (by address or server_name), a certificate of another CA is refused and
// nothing is lost, and a hub requiring client certificates accepts the
// reporter's cert_file/key_file.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "reporter/collect/collector.h"
#include "reporter/outbox/hub_channel.h"
#include "reporter/outbox/outbox_sender.h"
#include "reporter/config/reporter_config.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/fake_hub.h"
#include "tests/reporter/reporter_process.h"
#include "tests/support/child_process.h"

namespace hsync::reporter {
namespace {

using hsync::testing::ChildDb;
using hsync::testing::FakeHub;
using hsync::testing::RandomUuid;
using hsync::testing::ReadFileOrEmpty;
using ::testing::HasSubstr;

constexpr char kToken[] = "tls-node-token";

// Runs make-certs.sh into a fresh dir; returns the dir.
std::string MakeCerts(const std::string& extra_args) {
  const std::string dir = hsync::testing::MakeTempDir("certs") + "/out";
  const std::string cmd = absl::StrCat("bash ", HSYNC_SOURCE_DIR, "/deploy/make-certs.sh ", dir,
                                       " --hub-name hub.test ", extra_args, " >/dev/null 2>&1");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return dir;
}

class HubTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(MakeCerts("--client child-1"));
    other_ca_ = new std::string(MakeCerts(""));
  }

  HubTlsTest() : child_("tls"), store_(child_.state_db(), false) {
    EXPECT_TRUE(store_.EnsureSchema(child_.conn()).ok());
    token_file_ = hsync::testing::MakeTempDir("tlstok") + "/token";
    std::ofstream(token_file_) << kToken << "\n";
    chmod(token_file_.c_str(), 0600);
    user_ = RandomUuid();
    child_.InsertUser(user_, 3'000'000);
    CollectOptions collect;
    collect.node_id = "child-1";
    collect.panel_database = child_.panel_db();
    Collector collector(&store_, collect);
    EXPECT_TRUE(collector.CollectOnce(child_.conn(), absl::Now()).ok());
  }

  // Parses a real [hub] config (files read by the config loader) and drains.
  absl::Status Drain(const std::string& address, const std::string& hub_lines) {
    auto config = ParseReporterConfig(
        absl::StrCat("node_id = \"child-1\"\n[hub]\naddress = \"", address, "\"\ntoken_file = \"",
                     token_file_, "\"\n", hub_lines),
        "reporter.toml");
    if (!config.ok()) return config.status();
    OutboxSenderOptions options;
    options.token = config->hub.token;
    options.call_timeout = absl::Seconds(3);
    OutboxSender sender(MakeHubChannel(config->hub), child_.Options(), &store_, nullptr, &board_, options);
    return sender.DrainOnce();
  }

  std::string Pem(const std::string& dir, const std::string& name) { return ReadFileOrEmpty(dir + "/" + name); }

  static std::string* certs_;
  static std::string* other_ca_;
  ChildDb child_;
  StateStore store_;
  StatusBoard board_;
  std::string token_file_;
  std::string user_;
};

std::string* HubTlsTest::certs_ = nullptr;
std::string* HubTlsTest::other_ca_ = nullptr;

TEST_F(HubTlsTest, VerifiesTheHubCertificateAgainstCaFile) {
  auto hub = FakeHub::StartTls(kToken, Pem(*certs_, "hub.pem"), Pem(*certs_, "hub.key"));
  ASSERT_NE(hub, nullptr);
  absl::Status s = Drain(hub->address(), absl::StrCat("ca_file = \"", *certs_, "/ca.pem\"\n"));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(hub->BytesByUuid()[user_], 3'000'000u);
}

TEST_F(HubTlsTest, ServerNameOverridesTheNameChecked) {
  auto hub = FakeHub::StartTls(kToken, Pem(*certs_, "hub.pem"), Pem(*certs_, "hub.key"));
  absl::Status s = Drain(hub->address(), absl::StrCat("ca_file = \"", *certs_,
                                                      "/ca.pem\"\nserver_name = \"hub.test\"\n"));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(hub->Accepted().size(), 1u);
}

TEST_F(HubTlsTest, CertificateOfAnotherCaIsRefusedAndNothingIsLost) {
  auto hub = FakeHub::StartTls(kToken, Pem(*certs_, "hub.pem"), Pem(*certs_, "hub.key"));
  absl::Status s = Drain(hub->address(), absl::StrCat("ca_file = \"", *other_ca_, "/ca.pem\"\n"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(hub->calls(), 0);
  EXPECT_EQ(child_.Outbox().size(), 1u);
}

TEST_F(HubTlsTest, ClientCertificateWhenTheHubRequiresOne) {
  auto hub = FakeHub::StartTls(kToken, Pem(*certs_, "hub.pem"), Pem(*certs_, "hub.key"),
                               Pem(*certs_, "ca.pem"));
  const std::string ca = absl::StrCat("ca_file = \"", *certs_, "/ca.pem\"\n");
  EXPECT_FALSE(Drain(hub->address(), ca).ok());
  EXPECT_EQ(child_.Outbox().size(), 1u);
  absl::Status s = Drain(hub->address(), absl::StrCat(ca, "cert_file = \"", *certs_, "/client-child-1.pem\"\n",
                                                      "key_file = \"", *certs_, "/client-child-1.key\"\n"));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(child_.Outbox().empty());
}

}  // namespace
}  // namespace hsync::reporter
