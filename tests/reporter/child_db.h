// A child panel's database for reporter tests: a fresh Hiddify schema in the
// shared test MariaDB, a state schema name of its own, and small helpers to
// put users in and read what the reporter wrote.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mariadb.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::testing {

std::string RandomUuid();

class ChildDb {
 public:
  // Creates `<prefix>_N` with the Hiddify schema (owner admin id 1) and picks
  // `<prefix>_N_state` (dropped if it exists) for the reporter's state.
  explicit ChildDb(const std::string& prefix);

  MariaDbConnection& conn() { return *conn_; }
  const std::string& panel_db() const { return panel_db_; }
  const std::string& state_db() const { return state_db_; }
  MariaDbOptions Options() const;
  std::string UserTable() const { return "`" + panel_db_ + "`.`user`"; }

  // Inserts a user the way the panel would (every NOT NULL column).
  void InsertUser(const std::string& uuid, uint64_t current_usage,
                  const std::string& last_online = "0001-01-01 00:00:00");
  // Inserts `n` users with usage 0 in one statement; returns their uuids.
  std::vector<std::string> InsertUsers(size_t n);
  void SetUsage(const std::string& uuid, uint64_t bytes);
  void AddUsage(const std::string& uuid, uint64_t bytes);
  void Exec(const std::string& sql);
  uint64_t Usage(const std::string& uuid);
  // One column of one user as text (nullopt = NULL or no such user).
  std::optional<std::string> Column(const std::string& uuid, const std::string& column);
  // Every outbox payload, in write order.
  std::vector<hiddify_sync::v1::UsageReport> Outbox();
  // Sum of bytes per uuid over the outbox.
  std::map<std::string, uint64_t> OutboxBytes();
  uint64_t CountRows(const std::string& table_sql);
  // present: (re)creates the panel's stored procedure add_usage_json(json,
  // time) with the semantics of migration _v103 (a panel >= 10.86.1: atomic
  // adds, last_online, start_date); absent: drops it (an older panel).
  void SetAtomicUsageProcedure(bool present);
  // The panel's usage task for one user: CALL add_usage_json.
  void CallAddUsage(const std::string& uuid, uint64_t bytes);
  // The child panel's own is_active for the user (PANEL.md §3 on its row).
  bool PanelIsActive(const std::string& uuid);

 private:
  std::string panel_db_;
  std::string state_db_;
  std::unique_ptr<MariaDbConnection> conn_;
};

}  // namespace hsync::testing
