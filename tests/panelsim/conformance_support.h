// Shared fixture of the panelsim conformance tests: one panelsim (over the
// shared test MariaDB) per test suite, raw HTTP calls through libcurl, and a
// direct database connection to check what the panel stored.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "common/mariadb.h"
#include "nlohmann/json.hpp"
#include "tests/support/http_client.h"
#include "tests/support/panelsim_runner.h"

namespace hsync::testing {

// The date the conformance suites fix as panelsim's "today".
inline constexpr char kConformanceToday[] = "2030-06-15";

class PanelsimConformanceTest : public ::testing::Test {
 public:
  // Starts panelsim with --today kConformanceToday plus `extra_args`.
  static void StartPanelsim(std::vector<std::string> extra_args = {});
  static void StopPanelsim();
  // Reconnects the tests' own database connection (after a MariaDB restart).
  static void ReconnectDb();

  static PanelsimRunner& panel() { return *runner_; }

  // A request to `path` (absolute, e.g. "/proxy/api/v2/panel/ping/") with
  // exactly `headers` (nothing else is added except by libcurl itself).
  static absl::StatusOr<HttpResponse> Raw(const std::string& method, const std::string& path,
                                          const std::string& body,
                                          const std::vector<std::string>& headers,
                                          absl::Duration timeout = absl::Seconds(10));
  // The admin API with the owner's key, Accept and Content-Type JSON.
  static HttpResponse Api(const std::string& method, const std::string& path_under_v2,
                          const std::string& body = "");
  // Same with another API key.
  static HttpResponse ApiAs(const std::string& key, const std::string& method,
                            const std::string& path_under_v2, const std::string& body = "");
  static HttpResponse Control(const std::string& method, const std::string& path,
                              const std::string& body = "");

  // POSTs `body` (must succeed) and returns the created user object.
  static nlohmann::json CreateUser(const nlohmann::json& body);
  // GETs one user (must succeed).
  static nlohmann::json GetUser(const std::string& uuid);
  // PATCHes one user; returns the response.
  static HttpResponse PatchUser(const std::string& uuid, const nlohmann::json& body);

  // Runs SQL on panelsim's database.
  static ResultSet Sql(const std::string& sql);
  static void SqlExec(const std::string& sql);
  // One column of one user row (by uuid), as text; nullopt for NULL.
  static std::optional<std::string> UserColumn(const std::string& uuid, const std::string& column);
  static int64_t CurrentUsage(const std::string& uuid);

  static std::string NewUuid();
  static nlohmann::json ParseJson(const std::string& text);

 protected:
  static void TearDownTestSuite() { StopPanelsim(); }

 private:
  static std::unique_ptr<PanelsimRunner> runner_;
  static std::unique_ptr<MariaDbConnection> db_;
};

}  // namespace hsync::testing
