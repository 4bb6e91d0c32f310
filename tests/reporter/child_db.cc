#include "tests/reporter/child_db.h"

#include <gtest/gtest.h>

#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {

std::string RandomUuid() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const uint64_t a = rng(), b = rng();
  return absl::StrFormat("%08x-%04x-4%03x-%04x-%012x", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                         0x8000 | ((b >> 48) & 0x3fff), b & 0xffffffffffffULL);
}

ChildDb::ChildDb(const std::string& prefix) {
  panel_db_ = UniqueDatabaseName(prefix);
  state_db_ = panel_db_ + "_state";
  absl::Status created = SharedMariaDb().CreateHiddifyDatabase(panel_db_, RandomUuid());
  if (!created.ok()) {
    ADD_FAILURE() << created;
    abort();
  }
  auto conn = MariaDbConnection::Connect(SharedMariaDb().Options());
  if (!conn.ok()) {
    ADD_FAILURE() << conn.status();
    abort();
  }
  conn_ = *std::move(conn);
  Exec("DROP DATABASE IF EXISTS `" + state_db_ + "`");
}

MariaDbOptions ChildDb::Options() const { return SharedMariaDb().Options(); }

void ChildDb::Exec(const std::string& sql) {
  auto r = conn_->Execute(sql);
  ASSERT_TRUE(r.ok()) << r.status();
}

void ChildDb::InsertUser(const std::string& uuid, uint64_t current_usage,
                         const std::string& last_online) {
  Exec(absl::StrCat("INSERT INTO ", UserTable(),
                    " (uuid, name, last_online, usage_limit, package_days, mode, current_usage,"
                    " max_ips, enable, added_by) VALUES ('", uuid, "', 'u', '", last_online,
                    "', 1073741824000, 90, 'no_reset', ", current_usage, ", 100, 1, 1)"));
}

std::vector<std::string> ChildDb::InsertUsers(size_t n) {
  std::vector<std::string> uuids;
  std::string sql;
  for (size_t i = 0; i < n; ++i) {
    uuids.push_back(RandomUuid());
    absl::StrAppend(&sql, sql.empty() ? absl::StrCat("INSERT INTO ", UserTable(),
                    " (uuid, name, last_online, usage_limit, package_days, mode, current_usage,"
                    " max_ips, enable, added_by) VALUES ") : ",",
                    "('", uuids.back(), "','u','0001-01-01 00:00:00',1073741824000,90,'no_reset',0,100,1,1)");
    if ((i + 1) % 1000 == 0 || i + 1 == n) {
      Exec(sql);
      sql.clear();
    }
  }
  return uuids;
}

void ChildDb::SetUsage(const std::string& uuid, uint64_t bytes) {
  Exec(absl::StrCat("UPDATE ", UserTable(), " SET current_usage = ", bytes, " WHERE uuid = '", uuid, "'"));
}

void ChildDb::AddUsage(const std::string& uuid, uint64_t bytes) {
  Exec(absl::StrCat("UPDATE ", UserTable(), " SET current_usage = current_usage + ", bytes,
                    " WHERE uuid = '", uuid, "'"));
}

uint64_t ChildDb::Usage(const std::string& uuid) {
  auto v = Column(uuid, "current_usage");
  return v ? std::stoull(*v) : 0;
}

std::optional<std::string> ChildDb::Column(const std::string& uuid, const std::string& column) {
  auto rs = conn_->Query(absl::StrCat("SELECT `", column, "` FROM ", UserTable(), " WHERE uuid = '",
                                      uuid, "'"));
  EXPECT_TRUE(rs.ok()) << rs.status();
  if (!rs.ok() || rs->rows.empty()) return std::nullopt;
  return rs->rows[0][0];
}

std::vector<hiddify_sync::v1::UsageReport> ChildDb::Outbox() {
  std::vector<hiddify_sync::v1::UsageReport> out;
  auto rs = conn_->Query(absl::StrCat("SELECT payload FROM `", state_db_, "`.`outbox` ORDER BY id"));
  EXPECT_TRUE(rs.ok()) << rs.status();
  if (!rs.ok()) return out;
  for (const auto& row : rs->rows) {
    hiddify_sync::v1::UsageReport report;
    EXPECT_TRUE(report.ParseFromString(row[0].value_or("")));
    out.push_back(std::move(report));
  }
  return out;
}

std::map<std::string, uint64_t> ChildDb::OutboxBytes() {
  std::map<std::string, uint64_t> bytes;
  for (const auto& report : Outbox()) {
    for (const auto& u : report.usages()) {
      if (u.bytes() > 0) bytes[u.uuid()] += u.bytes();
    }
  }
  return bytes;
}

uint64_t ChildDb::CountRows(const std::string& table_sql) {
  auto rs = conn_->Query("SELECT COUNT(*) FROM " + table_sql);
  EXPECT_TRUE(rs.ok()) << rs.status();
  return rs.ok() ? std::stoull(rs->rows[0][0].value_or("0")) : 0;
}

void ChildDb::SetAtomicUsageProcedure(bool present) {
  const std::string name = absl::StrCat("`", panel_db_, "`.`add_usage_json`");
  if (!present) {
    Exec(absl::StrCat("DROP PROCEDURE IF EXISTS ", name));
    return;
  }
  Exec(absl::StrCat(
      "CREATE OR REPLACE PROCEDURE ", name,
      "(IN usage_data LONGTEXT, IN cur_time DATETIME)\n"
      "BEGIN\n"
      "  DECLARE i INT DEFAULT 0;\n"
      "  WHILE i < JSON_LENGTH(usage_data) DO\n"
      "    UPDATE ", UserTable(),
      " SET current_usage = current_usage + JSON_VALUE(usage_data, CONCAT('$[', i, '].usage')),"
      " last_online = cur_time, start_date = IFNULL(start_date, DATE(cur_time))"
      " WHERE uuid = JSON_VALUE(usage_data, CONCAT('$[', i, '].uuid'));\n"
      "    SET i = i + 1;\n"
      "  END WHILE;\n"
      "END"));
}

void ChildDb::CallAddUsage(const std::string& uuid, uint64_t bytes) {
  // A connection of its own: a CALL leaves a status result behind that this
  // client library does not drain.
  auto conn = MariaDbConnection::Connect(SharedMariaDb().Options());
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto called = (*conn)->Execute(absl::StrCat("CALL `", panel_db_, "`.`add_usage_json`('[{\"uuid\": \"", uuid,
                    "\", \"usage\": ", bytes, "}]', NOW())"));
  ASSERT_TRUE(called.ok()) << called.status();
}

bool ChildDb::PanelIsActive(const std::string& uuid) {
  auto rs = conn_->Query(absl::StrCat(
      "SELECT enable <> 0 AND NOT (current_usage > usage_limit) AND"
      " IF(start_date IS NULL, LEAST(package_days, 10000),"
      " package_days - DATEDIFF(CURDATE(), start_date)) >= 0 FROM ",
      UserTable(), " WHERE uuid = '", uuid, "'"));
  EXPECT_TRUE(rs.ok()) << rs.status();
  return rs.ok() && !rs->rows.empty() && rs->rows[0][0] == std::optional<std::string>("1");
}

}  // namespace hsync::testing
