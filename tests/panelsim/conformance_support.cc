#include "tests/panelsim/conformance_support.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {

std::unique_ptr<PanelsimRunner> PanelsimConformanceTest::runner_;
std::unique_ptr<MariaDbConnection> PanelsimConformanceTest::db_;

void PanelsimConformanceTest::StartPanelsim(std::vector<std::string> extra_args) {
  StopPanelsim();
  PanelsimOptions options;
  options.database = UniqueDatabaseName("psconf");
  options.extra_args = {"--today", kConformanceToday};
  options.extra_args.insert(options.extra_args.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<PanelsimRunner>> runner = PanelsimRunner::Start(options);
  ASSERT_TRUE(runner.ok()) << runner.status();
  runner_ = std::move(*runner);
  absl::StatusOr<std::unique_ptr<MariaDbConnection>> conn =
      MariaDbConnection::Connect(SharedMariaDb().Options(options.database));
  ASSERT_TRUE(conn.ok()) << conn.status();
  db_ = std::move(*conn);
}

void PanelsimConformanceTest::ReconnectDb() {
  absl::StatusOr<std::unique_ptr<MariaDbConnection>> conn =
      MariaDbConnection::Connect(SharedMariaDb().Options(runner_->options().database));
  ASSERT_TRUE(conn.ok()) << conn.status();
  db_ = std::move(*conn);
}

void PanelsimConformanceTest::StopPanelsim() {
  db_.reset();
  runner_.reset();
}

absl::StatusOr<HttpResponse> PanelsimConformanceTest::Raw(const std::string& method,
                                                          const std::string& path,
                                                          const std::string& body,
                                                          const std::vector<std::string>& headers,
                                                          absl::Duration timeout) {
  TestHttpClient client(runner_->root_url());
  return client.Request(method, path, body, headers, timeout);
}

HttpResponse PanelsimConformanceTest::ApiAs(const std::string& key, const std::string& method,
                                            const std::string& path_under_v2,
                                            const std::string& body) {
  absl::StatusOr<HttpResponse> response =
      Raw(method, absl::StrCat("/proxy/api/v2/", path_under_v2), body,
          {absl::StrCat("Hiddify-API-Key: ", key), "Accept: application/json",
           "Content-Type: application/json", "User-Agent: hiddify-sync-test/1"});
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *response : HttpResponse{};
}

HttpResponse PanelsimConformanceTest::Api(const std::string& method,
                                          const std::string& path_under_v2,
                                          const std::string& body) {
  return ApiAs(runner_->api_key(), method, path_under_v2, body);
}

HttpResponse PanelsimConformanceTest::Control(const std::string& method, const std::string& path,
                                              const std::string& body) {
  absl::StatusOr<HttpResponse> response = runner_->Control(method, path, body);
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *response : HttpResponse{};
}

nlohmann::json PanelsimConformanceTest::CreateUser(const nlohmann::json& body) {
  const HttpResponse response = Api("POST", "admin/user/", body.dump());
  EXPECT_EQ(response.status, 200) << response.body;
  return ParseJson(response.body);
}

nlohmann::json PanelsimConformanceTest::GetUser(const std::string& uuid) {
  const HttpResponse response = Api("GET", absl::StrCat("admin/user/", uuid, "/"));
  EXPECT_EQ(response.status, 200) << response.body;
  return ParseJson(response.body);
}

HttpResponse PanelsimConformanceTest::PatchUser(const std::string& uuid,
                                                const nlohmann::json& body) {
  return Api("PATCH", absl::StrCat("admin/user/", uuid, "/"), body.dump());
}

ResultSet PanelsimConformanceTest::Sql(const std::string& sql) {
  absl::StatusOr<ResultSet> rs = db_->Query(sql);
  EXPECT_TRUE(rs.ok()) << rs.status();
  return rs.ok() ? *rs : ResultSet{};
}

void PanelsimConformanceTest::SqlExec(const std::string& sql) {
  absl::StatusOr<uint64_t> result = db_->Execute(sql);
  ASSERT_TRUE(result.ok()) << result.status();
}

std::optional<std::string> PanelsimConformanceTest::UserColumn(const std::string& uuid,
                                                              const std::string& column) {
  const ResultSet rs =
      Sql(absl::StrCat("SELECT `", column, "` FROM user WHERE uuid = ", db_->Quote(uuid)));
  EXPECT_EQ(rs.rows.size(), 1u) << "user " << uuid;
  if (rs.rows.empty()) return std::nullopt;
  return rs.rows[0][0];
}

int64_t PanelsimConformanceTest::CurrentUsage(const std::string& uuid) {
  return std::stoll(UserColumn(uuid, "current_usage").value_or("-1"));
}

std::string PanelsimConformanceTest::NewUuid() {
  static absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & ~uint64_t{0xF000}) | uint64_t{0x4000};
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                         lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

nlohmann::json PanelsimConformanceTest::ParseJson(const std::string& text) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text;
  return parsed;
}

}  // namespace hsync::testing
