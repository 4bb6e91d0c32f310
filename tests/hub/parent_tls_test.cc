// The hub's connection to the parent over real TLS (an HTTPS server with a
// certificate made by openssl for this test): the certificate is verified by
// default, so a self-signed panel is refused as "unreachable" (nothing sent);
// [parent] ca_file makes it trusted; insecure_parent_tls accepts it and is
// warned about.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "hub/config/hub_config.h"
#include "hub/parent/parent_client.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using ::testing::HasSubstr;

constexpr char kApiKey[] = "11111111-2222-4333-8444-555555555555";

class ParentTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hsync::testing::MakeTempDir("parent-tls");
    cert_ = dir_ + "/panel.pem";
    key_ = dir_ + "/panel.key";
    const std::string command = absl::StrCat(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ", key_, " -out ", cert_,
        " -days 2 -subj /CN=panel.test -addext subjectAltName=IP:127.0.0.1 >", dir_,
        "/openssl.log 2>&1");
    ASSERT_EQ(std::system(command.c_str()), 0) << "openssl failed; see " << dir_ << "/openssl.log";
    server_ = std::make_unique<httplib::SSLServer>(cert_.c_str(), key_.c_str());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/admin/api/v2/panel/ping/", [this](const httplib::Request& req,
                                                       httplib::Response& res) {
      ++pings_;
      last_key_ = req.get_header_value("Hiddify-API-Key");
      res.set_content(R"({"msg":"GET: PONG"})", "application/json");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    for (int i = 0; i < 100 && !server_->is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  void TearDown() override {
    if (server_ != nullptr) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  ParentClientOptions Options() const {
    ParentClientOptions o;
    o.base_url = absl::StrCat("https://127.0.0.1:", port_, "/admin");
    o.api_key = kApiKey;
    o.connect_timeout = absl::Seconds(2);
    o.request_timeout = absl::Seconds(5);
    return o;
  }

  std::string dir_, cert_, key_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> pings_{0};
  std::string last_key_;
};

TEST_F(ParentTlsTest, ASelfSignedPanelIsRefusedByDefaultAndNothingIsSent) {
  auto client = ParentClient::Create(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Status ping = (*client)->Ping();
  ASSERT_FALSE(ping.ok());
  EXPECT_TRUE(IsParentTransportError(ping)) << ping;
  EXPECT_THAT(std::string(ping.message()), HasSubstr("certificate")) << ping;
  EXPECT_THAT(std::string(ping.message()), ::testing::Not(HasSubstr(kApiKey)));
  EXPECT_EQ(pings_.load(), 0) << "a request (and the API key) reached an unverified server";
}

TEST_F(ParentTlsTest, CaFileMakesThePanelsCertificateTrusted) {
  ParentClientOptions options = Options();
  options.ca_file = cert_;
  auto client = ParentClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Status ping = (*client)->Ping();
  EXPECT_TRUE(ping.ok()) << ping;
  EXPECT_EQ(pings_.load(), 1);
  EXPECT_EQ(last_key_, kApiKey);
}

TEST_F(ParentTlsTest, InsecureParentTlsAcceptsItAndIsWarnedAbout) {
  const std::string key_file = dir_ + "/api-key";
  std::FILE* f = std::fopen(key_file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(kApiKey, f);
  std::fclose(f);
  ::chmod(key_file.c_str(), 0600);
  auto config = ParseHubConfig(
      absl::StrCat("plaintext = true\nlisten = \"127.0.0.1:0\"\ninsecure_parent_tls = true\n",
                   "[parent]\nurl = \"", Options().base_url, "\"\napi_key_file = \"", key_file,
                   "\"\n[nodes]\nn1 = \"sha256:", std::string(64, 'a'), "\"\n"),
      "hub.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->parent.verify_tls);
  EXPECT_THAT(config->warnings, ::testing::Contains(HasSubstr("insecure_parent_tls = true")));

  ::testing::internal::CaptureStderr();
  auto client = ParentClient::Create(config->parent);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_THAT(log, HasSubstr("parent TLS certificate verification is OFF"));
  absl::Status ping = (*client)->Ping();
  EXPECT_TRUE(ping.ok()) << ping;
  EXPECT_EQ(pings_.load(), 1);
}

}  // namespace
}  // namespace hsync::hub
