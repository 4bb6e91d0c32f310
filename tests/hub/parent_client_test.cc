// ParentClient against panelsim (the Hiddify panel's API over real MariaDB),
// over real loopback HTTP: reads, exact-byte PATCHes, and every error class.
#include "hub/parent/parent_client.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/panel_time.h"
#include "common/units.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/hub/parent_client_test_panel.h"
#include "tests/hub/parent_client_test_proxy.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using testing::FrontProxy;
using testing::TestPanel;
using testing::TestUuid;

class ParentClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { panel_ = TestPanel::Start().release(); }
  static void TearDownTestSuite() {
    delete panel_;
    panel_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(panel_, nullptr);
    panel_->ClearFaults();
    client_ = panel_->Client();
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override {
    if (panel_ != nullptr) panel_->ClearFaults();
  }

  // A uuid no other test of this suite uses.
  static std::string NewUuid() {
    static uint64_t n = 0;
    return TestUuid(++n, 0xc1);
  }

  static TestPanel* panel_;
  std::unique_ptr<ParentClient> client_;
};
TestPanel* ParentClientTest::panel_ = nullptr;

TEST(ParentClientEmptyPanelTest, ListOfAPanelWithoutUsersIsAnEmptyRoster) {
  auto panel = TestPanel::Start();
  ASSERT_NE(panel, nullptr);
  auto users = panel->Client()->ListUsers();
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_TRUE(users->users.empty());
  EXPECT_TRUE(users->skipped.empty());
  EXPECT_EQ(panel->Calls("GET list_users"), 1);
}

TEST_F(ParentClientTest, ListReturnsEveryUserWithItsFields) {
  const std::string a = NewUuid(), b = NewUuid();
  panel_->CreateUser(a, 10 * kBytesPerGiB, 123);
  panel_->CreateUser(b, 1, 0, "2024-01-02");
  auto users = client_->ListUsers();
  ASSERT_TRUE(users.ok()) << users.status();
  const hiddify_sync::v1::User* ua = nullptr;
  const hiddify_sync::v1::User* ub = nullptr;
  EXPECT_TRUE(users->skipped.empty());
  for (const auto& u : users->users) {
    if (u.uuid() == a) ua = &u;
    if (u.uuid() == b) ub = &u;
  }
  ASSERT_NE(ua, nullptr);
  ASSERT_NE(ub, nullptr);
  EXPECT_EQ(ua->usage_limit_bytes(), 10 * kBytesPerGiB);
  EXPECT_EQ(ua->current_usage_bytes(), 123u);
  EXPECT_FALSE(ua->has_start_date());
  EXPECT_EQ(ub->usage_limit_bytes(), 1u);
  EXPECT_EQ(ub->start_date(), "2024-01-02");
  EXPECT_FALSE(ua->wg_pk().empty());
}

TEST_F(ParentClientTest, GetReturnsTheUserAndUnknownIsNotFound) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, 5 * kBytesPerGiB, 77);
  auto user = client_->GetUser(a);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->uuid(), a);
  EXPECT_EQ(user->current_usage_bytes(), 77u);
  EXPECT_EQ(user->last_online(), std::string(kNeverOnline));

  auto missing = client_->GetUser(NewUuid());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_EQ(ParentHttpStatus(missing.status()), 404);
  EXPECT_FALSE(IsParentTransportError(missing.status()));
  EXPECT_EQ(client_->GetUser("../admin").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ParentClientTest, PatchStoresExactlyTheBytesForEverySize) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, 1000 * kBytesPerGiB, 0, "2024-01-01");
  for (uint64_t bytes : {uint64_t{1}, uint64_t{1} << 20, 5 * kBytesPerGiB, uint64_t{123456789},
                         uint64_t{1'000'000'000'000'000}}) {
    UserPatch patch;
    patch.current_usage_bytes = bytes;
    auto answer = client_->PatchUser(a, patch);
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(answer->current_usage_bytes(), bytes);
    EXPECT_EQ(panel_->Usage(a), bytes) << "stored bytes differ for " << bytes;
  }
}

TEST_F(ParentClientTest, PatchSetsLastOnlineAndStartsThePackage) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 0, std::nullopt, 45);
  UserPatch patch;
  patch.current_usage_bytes = 10;
  patch.last_online = "2024-03-04 05:06:07";
  patch.package_days = 45;
  patch.start_date = FormatPanelDate(PanelToday());
  auto answer = client_->PatchUser(a, patch);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->start_date(), *patch.start_date);
  EXPECT_EQ(answer->last_online(), "2024-03-04 05:06:07");
  const testing::DbUserRow row = panel_->Row(a);
  EXPECT_EQ(row.current_usage, 10u);
  EXPECT_EQ(row.last_online, "2024-03-04 05:06:07");
  EXPECT_EQ(row.start_date, patch.start_date);
  EXPECT_EQ(row.package_days, 45);
}

TEST_F(ParentClientTest, PatchOfAnUnknownUserIsNotFound) {
  UserPatch patch;
  patch.current_usage_bytes = 1;
  EXPECT_EQ(client_->PatchUser(NewUuid(), patch).status().code(), absl::StatusCode::kNotFound);
}

// A proxy or CDN in front of the panel answering 404 itself: only the
// panel's own error object with the route's "no such user" message means
// "not found" / "no users"; anything else is an error that concludes nothing.
class ParentClientBehindProxyTest : public ParentClientTest {
 protected:
  void SetUp() override {
    ParentClientTest::SetUp();
    proxy_ = FrontProxy::Start(panel_->runner().port());
    ASSERT_NE(proxy_, nullptr);
    ParentClientOptions o = panel_->ClientOptions();
    o.base_url = absl::StrCat(proxy_->root_url(), "/", panel_->runner().options().proxy_path);
    auto client = ParentClient::Create(o);
    ASSERT_TRUE(client.ok()) << client.status();
    behind_proxy_ = std::move(*client);
  }

  struct ForeignBody {
    std::string body;
    std::string content_type;
  };
  // 404 bodies that are not the panel's "no such user".
  static std::vector<ForeignBody> ForeignBodies() {
    return {{testing::kNginx404Html, "text/html"},
            {R"({"msg":"Not Found"})", "application/json"},
            {R"({"message":"Not Found"})", "application/json"},
            {R"({"detail":{},"message":"Not Found"})", "application/json"},
            {R"({"detail":{},"message":"User not found","error":"cdn"})", "application/json"},
            {R"({"message":"User not found"})", "application/json"},
            {"User not found", "text/plain"},
            {"", "text/plain"}};
  }

  std::unique_ptr<FrontProxy> proxy_;
  std::unique_ptr<ParentClient> behind_proxy_;
};

TEST_F(ParentClientBehindProxyTest, ForwardedAnswersAreThePanels) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 5);
  auto user = behind_proxy_->GetUser(a);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->current_usage_bytes(), 5u);
  // The panel's own 404s pass through the proxy and keep their meaning.
  EXPECT_EQ(behind_proxy_->GetUser(NewUuid()).status().code(), absl::StatusCode::kNotFound);
  UserPatch patch;
  patch.current_usage_bytes = 1;
  EXPECT_EQ(behind_proxy_->PatchUser(NewUuid(), patch).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(proxy_->not_found_answers(), 0);
}

TEST_F(ParentClientBehindProxyTest, A404NotFromThePanelOnAUserRouteIsAnErrorNotNotFound) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB, 5, "2024-01-01");
  UserPatch patch;
  patch.current_usage_bytes = 99;
  for (const ForeignBody& foreign : ForeignBodies()) {
    SCOPED_TRACE(foreign.body);
    proxy_->AnswerNotFound(foreign.body, foreign.content_type);
    auto user = behind_proxy_->GetUser(a);
    ASSERT_FALSE(user.ok());
    EXPECT_NE(user.status().code(), absl::StatusCode::kNotFound) << user.status();
    EXPECT_EQ(user.status().code(), absl::StatusCode::kUnavailable) << user.status();
    EXPECT_FALSE(IsParentTransportError(user.status()));
    EXPECT_EQ(ParentHttpStatus(user.status()), 404);
    EXPECT_THAT(std::string(user.status().message()),
                ::testing::HasSubstr("404 that is not the panel's: "));
    EXPECT_LT(user.status().message().size(), 400u);
    auto patched = behind_proxy_->PatchUser(a, patch);
    ASSERT_FALSE(patched.ok());
    EXPECT_EQ(patched.status().code(), absl::StatusCode::kUnavailable) << patched.status();
    EXPECT_THAT(std::string(patched.status().message()),
                ::testing::HasSubstr("404 that is not the panel's"));
  }
  // The list route's message is not a user route's "not found".
  proxy_->AnswerNotFound(R"({"detail":{},"message":"You have no user"})", "application/json");
  EXPECT_EQ(behind_proxy_->GetUser(a).status().code(), absl::StatusCode::kUnavailable);
  proxy_->AnswerNotFound("", "text/html");
  EXPECT_THAT(std::string(behind_proxy_->GetUser(a).status().message()),
              ::testing::HasSubstr("404 that is not the panel's: (empty body)"));
  EXPECT_EQ(panel_->Usage(a), 5u);  // nothing reached the panel
}

TEST_F(ParentClientBehindProxyTest, ThePanelsExactNotFoundBodiesAreNotFound) {
  const std::string a = NewUuid();
  UserPatch patch;
  patch.current_usage_bytes = 1;
  for (const char* body :
       {R"({"detail":{},"message":"User not found"})", R"({"detail":{},"message":"user not found"})",
        R"({"msg":"User not found"})", R"({"msg":"user not found"})"}) {
    SCOPED_TRACE(body);
    proxy_->AnswerNotFound(body, "application/json");
    auto user = behind_proxy_->GetUser(a);
    EXPECT_EQ(user.status().code(), absl::StatusCode::kNotFound) << user.status();
    EXPECT_EQ(ParentHttpStatus(user.status()), 404);
    EXPECT_EQ(behind_proxy_->PatchUser(a, patch).status().code(), absl::StatusCode::kNotFound);
  }
}

TEST_F(ParentClientBehindProxyTest, A404NotFromThePanelOnTheListRouteIsAnErrorNotAnEmptyRoster) {
  for (const ForeignBody& foreign : ForeignBodies()) {
    SCOPED_TRACE(foreign.body);
    proxy_->AnswerNotFound(foreign.body, foreign.content_type);
    auto users = behind_proxy_->ListUsers();
    ASSERT_FALSE(users.ok()) << "a 404 of the proxy was taken for an empty roster";
    EXPECT_EQ(users.status().code(), absl::StatusCode::kUnavailable) << users.status();
    EXPECT_EQ(ParentHttpStatus(users.status()), 404);
    EXPECT_THAT(std::string(users.status().message()),
                ::testing::HasSubstr("404 that is not the panel's"));
  }
  // A user route's message is not the list route's "no users".
  proxy_->AnswerNotFound(R"({"detail":{},"message":"User not found"})", "application/json");
  EXPECT_FALSE(behind_proxy_->ListUsers().ok());
}

TEST_F(ParentClientBehindProxyTest, ThePanelsExactNoUserBodiesAreAnEmptyRoster) {
  for (const char* body :
       {R"({"detail":{},"message":"You have no user"})", R"({"msg":"You have no user"})"}) {
    SCOPED_TRACE(body);
    proxy_->AnswerNotFound(body, "application/json");
    auto users = behind_proxy_->ListUsers();
    ASSERT_TRUE(users.ok()) << users.status();
    EXPECT_TRUE(users->users.empty());
  }
}

TEST_F(ParentClientTest, AnUnreadableListElementIsSkippedAndTheOthersAreListed) {
  const std::string good = NewUuid(), negative = NewUuid();
  panel_->CreateUser(good, kBytesPerGiB, 10);
  panel_->CreateUser(negative, kBytesPerGiB, 10);
  // The panel accepts and prints a negative usage (an admin's edit).
  panel_->SetNegativeUsageInDb(negative, -static_cast<int64_t>(kBytesPerGiB));
  auto users = client_->ListUsers();
  ASSERT_TRUE(users.ok()) << users.status();
  bool good_listed = false;
  for (const auto& u : users->users) {
    EXPECT_NE(u.uuid(), negative);
    if (u.uuid() == good) good_listed = true;
  }
  EXPECT_TRUE(good_listed);
  ASSERT_EQ(users->skipped.size(), 1u);
  EXPECT_EQ(users->skipped[0].uuid, negative);
  EXPECT_EQ(users->skipped[0].field, "current_usage_GB");
  EXPECT_THAT(users->skipped[0].reason, ::testing::HasSubstr("current_usage_GB"));
  EXPECT_THAT(users->skipped[0].reason, ::testing::HasSubstr("negative"));
  panel_->SetUsageInDb(negative, 0);  // readable again for the other tests of the suite
}

TEST_F(ParentClientTest, PingAnswers) { EXPECT_TRUE(client_->Ping().ok()); }

// Client-side TCP sockets (any state, TIME_WAIT included) towards `port`.
int SocketsTowardsPort(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  int count = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote;
    fields >> slot >> local >> remote;
    const size_t colon = remote.find(':');
    if (colon != std::string::npos &&
        std::stoi(remote.substr(colon + 1), nullptr, 16) == port) {
      ++count;
    }
  }
  return count;
}

TEST_F(ParentClientTest, OneConnectionServesManyRequests) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB);
  ASSERT_TRUE(client_->GetUser(a).ok());  // the connection is open now
  const int before = SocketsTowardsPort(panel_->runner().port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client_->GetUser(a).ok());
    UserPatch patch;
    patch.current_usage_bytes = i;
    ASSERT_TRUE(client_->PatchUser(a, patch).ok());
  }
  // A new connection per request would leave 40 more sockets (TIME_WAIT).
  EXPECT_LE(SocketsTowardsPort(panel_->runner().port()), before);
}

TEST_F(ParentClientTest, WrongKeyIsPermissionDenied) {
  ParentClientOptions o = panel_->ClientOptions();
  o.api_key = TestUuid(999, 0xbad);
  auto client = ParentClient::Create(o);
  ASSERT_TRUE(client.ok());
  auto users = (*client)->ListUsers();
  EXPECT_EQ(users.status().code(), absl::StatusCode::kPermissionDenied) << users.status();
  EXPECT_EQ(users.status().message().find(o.api_key), std::string::npos);
}

TEST_F(ParentClientTest, WrongProxyPathIsInvalidArgument) {
  ParentClientOptions o = panel_->ClientOptions();
  o.base_url = panel_->runner().root_url() + "/not-the-path/";
  auto users = (*ParentClient::Create(o))->ListUsers();
  EXPECT_EQ(users.status().code(), absl::StatusCode::kInvalidArgument) << users.status();
}

TEST_F(ParentClientTest, BaseUrlWithTrailingSlashWorks) {
  ParentClientOptions o = panel_->ClientOptions();
  o.base_url += "/";
  EXPECT_TRUE((*ParentClient::Create(o))->Ping().ok());
}

TEST_F(ParentClientTest, BotUserAgentIsRefusedByThePanelSoOursIsSent) {
  ParentClientOptions o = panel_->ClientOptions();
  o.user_agent = "Python-urllib/3.11";
  EXPECT_EQ((*ParentClient::Create(o))->Ping().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client_->Ping().ok());  // hiddify-sync/<version> is not a bot
}

TEST_F(ParentClientTest, ServerErrorIsUnavailableButNotTransport) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB);
  panel_->AddFault({{"route", "get_user"}, {"error_rate", 1.0}, {"error_status", 503}});
  auto user = client_->GetUser(a);
  EXPECT_EQ(user.status().code(), absl::StatusCode::kUnavailable) << user.status();
  EXPECT_EQ(ParentHttpStatus(user.status()), 503);
  EXPECT_FALSE(IsParentTransportError(user.status()));
}

TEST_F(ParentClientTest, TimeoutIsATransportError) {
  ParentClientOptions o = panel_->ClientOptions();
  o.request_timeout = absl::Milliseconds(500);
  auto client = ParentClient::Create(o);
  ASSERT_TRUE(client.ok());
  panel_->AddFault({{"route", "ping"}, {"timeout_rate", 1.0}, {"remaining", 1}});
  const absl::Time start = absl::Now();
  absl::Status ping = (*client)->Ping();
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable) << ping;
  EXPECT_TRUE(IsParentTransportError(ping));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // The same client recovers on a new connection.
  EXPECT_TRUE((*client)->Ping().ok());
}

TEST_F(ParentClientTest, DroppedConnectionIsATransportError) {
  panel_->AddFault({{"route", "ping"}, {"drop_rate", 1.0}, {"remaining", 1}});
  absl::Status ping = client_->Ping();
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable) << ping;
  EXPECT_TRUE(IsParentTransportError(ping));
  EXPECT_TRUE(client_->Ping().ok());
}

TEST_F(ParentClientTest, GarbageBodyIsDataLoss) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, kBytesPerGiB);
  panel_->AddFault({{"route", "get_user"}, {"garbage_rate", 1.0}, {"remaining", 1}});
  auto user = client_->GetUser(a);
  EXPECT_EQ(user.status().code(), absl::StatusCode::kDataLoss) << user.status();
  EXPECT_LT(user.status().message().size(), 400u);
  panel_->AddFault({{"route", "list_users"}, {"garbage_rate", 1.0}, {"remaining", 1}});
  EXPECT_EQ(client_->ListUsers().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ParentClientTest, RefusedConnectionIsATransportError) {
  ParentClientOptions o = panel_->ClientOptions();
  o.base_url = "http://127.0.0.1:" + std::to_string(hsync::testing::PickFreePort()) + "/proxy";
  absl::Status ping = (*ParentClient::Create(o))->Ping();
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable) << ping;
  EXPECT_TRUE(IsParentTransportError(ping));
}

TEST(ParentClientRedirectTest, RedirectIsNotFollowedAndExplained) {
  // A loopback server that answers every request with a 308, as the panel
  // does for a URL it considers malformed.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread server([listener] {
    const int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    char buf[4096];
    (void)read(conn, buf, sizeof buf);
    const char answer[] =
        "HTTP/1.1 308 PERMANENT REDIRECT\r\nLocation: http://elsewhere/x/\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n";
    (void)write(conn, answer, sizeof answer - 1);
    close(conn);
  });
  ParentClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/proxy";
  o.api_key = TestUuid(1);
  absl::Status ping = (*ParentClient::Create(o))->Ping();
  server.join();
  close(listener);
  EXPECT_EQ(ping.code(), absl::StatusCode::kFailedPrecondition) << ping;
  EXPECT_NE(ping.message().find("parent URL is wrong"), std::string::npos) << ping;
}

TEST(ParentClientOptionsTest, UnusableOptionsAreRefused) {
  ParentClientOptions o;
  o.base_url = "ftp://x";
  o.api_key = "k";
  EXPECT_EQ(ParentClient::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.base_url = "https://panel.example/abc";
  o.api_key = "";
  EXPECT_EQ(ParentClient::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.api_key = "k";
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(ParentClient::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.ca_file = "";
  EXPECT_TRUE(ParentClient::Create(o).ok());
}

}  // namespace
}  // namespace hsync::hub
