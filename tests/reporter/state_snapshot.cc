#include "tests/reporter/state_snapshot.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace hsync::testing {
namespace {

absl::StatusOr<std::vector<std::string>> Tables(MariaDbConnection& conn, const std::string& db) {
  auto rs = conn.Query(absl::StrCat(
      "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ", conn.Quote(db)));
  if (!rs.ok()) return rs.status();
  std::vector<std::string> out;
  for (const auto& row : rs->rows) out.push_back(row[0].value_or(""));
  return out;
}

}  // namespace

absl::Status StateSnapshot::Take(MariaDbConnection& conn) {
  auto run = [&](const std::string& sql) { return conn.Execute(sql).status(); };
  if (auto s = run(absl::StrCat("DROP DATABASE IF EXISTS `", snap_db(), "`")); !s.ok()) return s;
  if (auto s = run(absl::StrCat("CREATE DATABASE `", snap_db(), "`")); !s.ok()) return s;
  auto tables = Tables(conn, state_db_);
  if (!tables.ok()) return tables.status();
  for (const std::string& t : *tables) {
    const std::string from = absl::StrCat("`", state_db_, "`.`", t, "`");
    const std::string to = absl::StrCat("`", snap_db(), "`.`", t, "`");
    if (auto s = run(absl::StrCat("CREATE TABLE ", to, " LIKE ", from)); !s.ok()) return s;
    if (auto s = run(absl::StrCat("INSERT INTO ", to, " SELECT * FROM ", from)); !s.ok()) return s;
  }
  return run(absl::StrCat("CREATE TABLE `", snap_db(), "`.`__panel_user_counters` AS SELECT id, ",
                          "current_usage, last_online, last_reset_time FROM `", panel_db_, "`.`user`"));
}

absl::Status StateSnapshot::Restore(MariaDbConnection& conn) {
  auto tables = Tables(conn, snap_db());
  if (!tables.ok()) return tables.status();
  if (auto s = conn.Begin(); !s.ok()) return s;
  auto run = [&](const std::string& sql) { return conn.Execute(sql).status(); };
  for (const std::string& t : *tables) {
    if (t == "__panel_user_counters") continue;
    const std::string live = absl::StrCat("`", state_db_, "`.`", t, "`");
    const std::string copy = absl::StrCat("`", snap_db(), "`.`", t, "`");
    if (auto s = run(absl::StrCat("DELETE FROM ", live)); !s.ok()) return s;
    if (auto s = run(absl::StrCat("INSERT INTO ", live, " SELECT * FROM ", copy)); !s.ok()) return s;
  }
  if (auto s = run(absl::StrCat("UPDATE `", panel_db_, "`.`user` u JOIN `", snap_db(),
                                "`.`__panel_user_counters` c ON c.id = u.id SET u.current_usage = "
                                "c.current_usage, u.last_online = c.last_online, u.last_reset_time = "
                                "c.last_reset_time"));
      !s.ok()) {
    return s;
  }
  return conn.Commit();
}

}  // namespace hsync::testing
