// A panelsim parent for the hub's data-path tests: start it, create users
// through its API, read the truth straight from its MariaDB, drive faults
// and read call counters through its control API.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "common/units.h"
#include "hub/parent/parent_client.h"
#include "tests/support/panelsim_runner.h"
#include "tests/support/test_mariadb.h"

namespace hsync::hub::testing {

struct DbUserRow {
  uint64_t current_usage = 0;
  std::string last_online;
  std::optional<std::string> start_date;
  int package_days = 0;
};

class TestPanel {
 public:
  // Starts a fresh panelsim (its own database); fails the test if it cannot.
  static std::unique_ptr<TestPanel> Start(std::vector<std::string> extra_args = {}) {
    hsync::testing::PanelsimOptions options;
    options.extra_args = std::move(extra_args);
    auto runner = hsync::testing::PanelsimRunner::Start(options);
    EXPECT_TRUE(runner.ok()) << runner.status();
    if (!runner.ok()) return nullptr;
    auto panel = std::unique_ptr<TestPanel>(new TestPanel());
    panel->runner_ = std::move(*runner);
    auto db = MariaDbConnection::Connect(
        hsync::testing::SharedMariaDb().Options(panel->runner_->options().database));
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return nullptr;
    panel->db_ = std::move(*db);
    return panel;
  }

  hsync::testing::PanelsimRunner& runner() { return *runner_; }

  ParentClientOptions ClientOptions() const {
    ParentClientOptions o;
    o.base_url = runner_->base_url();
    o.api_key = runner_->api_key();
    o.connect_timeout = absl::Seconds(2);
    o.request_timeout = absl::Seconds(5);
    return o;
  }

  std::unique_ptr<ParentClient> Client() {
    auto client = ParentClient::Create(ClientOptions());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // Creates a user through the panel's API (POST).
  void CreateUser(const std::string& uuid, uint64_t limit_bytes, uint64_t usage_bytes = 0,
                  std::optional<std::string> start_date = std::nullopt, int package_days = 30) {
    nlohmann::json body = {{"uuid", uuid},
                           {"name", "user-" + uuid.substr(uuid.size() - 6)},
                           {"package_days", package_days}};
    std::string text = body.dump();
    text.pop_back();  // append the GiB numbers as exact text
    absl::StrAppend(&text, ",\"usage_limit_GB\":", BytesToPanelGiB(limit_bytes),
                    ",\"current_usage_GB\":", BytesToPanelGiB(usage_bytes));
    if (start_date) absl::StrAppend(&text, ",\"start_date\":\"", *start_date, "\"");
    text += "}";
    auto r = runner_->Api("POST", "admin/user/", text);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
  }

  void DeleteUser(const std::string& uuid) {
    auto r = runner_->Api("DELETE", absl::StrCat("admin/user/", uuid, "/"));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
  }

  // The user's row as stored in the panel's database (the truth).
  DbUserRow Row(const std::string& uuid) {
    DbUserRow row;
    auto rs = db_->Query(absl::StrCat(
        "SELECT current_usage, DATE_FORMAT(last_online, '%Y-%m-%d %H:%i:%s'), start_date, "
        "package_days FROM user WHERE uuid = ",
        db_->Quote(uuid)));
    EXPECT_TRUE(rs.ok()) << rs.status();
    if (!rs.ok() || rs->rows.empty()) {
      ADD_FAILURE() << "no user " << uuid;
      return row;
    }
    const auto& r = rs->rows[0];
    EXPECT_TRUE(absl::SimpleAtoi(r[0].value_or(""), &row.current_usage));
    row.last_online = r[1].value_or("");
    row.start_date = r[2];
    EXPECT_TRUE(absl::SimpleAtoi(r[3].value_or(""), &row.package_days));
    return row;
  }
  uint64_t Usage(const std::string& uuid) { return Row(uuid).current_usage; }

  // Writes the usage directly (an admin edit behind the hub's back).
  void SetUsageInDb(const std::string& uuid, uint64_t bytes) {
    auto r = db_->Execute(absl::StrCat("UPDATE user SET current_usage = ", bytes,
                                       " WHERE uuid = ", db_->Quote(uuid)));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // Writes a negative usage, as an admin's edit can leave it: the panel
  // accepts it and prints a negative current_usage_GB.
  void SetNegativeUsageInDb(const std::string& uuid, int64_t bytes) {
    ASSERT_LT(bytes, 0);
    auto r = db_->Execute(absl::StrCat("UPDATE user SET current_usage = ", bytes,
                                       " WHERE uuid = ", db_->Quote(uuid)));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  void AddFault(const nlohmann::json& rule) {
    auto r = runner_->Control("POST", "faults", rule.dump());
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
  }
  void ClearFaults() {
    auto r = runner_->Control("DELETE", "faults");
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void ResetCounters() {
    auto r = runner_->Control("DELETE", "counters");
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // /_sim/counters: calls["<METHOD> <route>"], usage_patches, ...
  nlohmann::json Counters() {
    auto r = runner_->Control("GET", "counters");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return nlohmann::json::parse(r->body, nullptr, false);
  }
  int64_t Calls(const std::string& key) {
    nlohmann::json c = Counters();
    if (!c.contains("calls") || !c["calls"].contains(key)) return 0;
    return c["calls"][key].get<int64_t>();
  }

 private:
  TestPanel() = default;
  std::unique_ptr<hsync::testing::PanelsimRunner> runner_;
  std::unique_ptr<MariaDbConnection> db_;
};

}  // namespace hsync::hub::testing
