// The parent panel's MariaDB as the hub uses it with [parent] write =
// "database" (PANEL.md §2): one lazily (re)connected connection to the
// panel's database, its schema checked once per connection, and the hub's own
// schema on that server (the ids of the batches applied there) created when
// missing. Not thread-safe: each thread that talks to the database owns one.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mariadb.h"

namespace hsync::hub {

struct ParentDatabaseOptions {
  std::string socket = "/run/mysqld/mysqld.sock";
  std::string user = "root";
  std::string password;  // from password_file; a secret, never logged
  std::string database = "hiddifypanel";   // the panel's schema
  std::string hub_database = "hiddify_sync_hub";  // the hub's own schema on that server
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration read_timeout = absl::Seconds(30);
};

// The hub's table of applied batches, in hub_database.
inline constexpr char kAppliedBatchesTable[] = "applied_batches";

class ParentDatabase {
 public:
  explicit ParentDatabase(ParentDatabaseOptions options);
  ~ParentDatabase();

  // The open connection, connecting and checking first when there is none:
  // the panel's `user` table must have every column the hub reads or writes
  // (FailedPrecondition naming the missing ones: "wrong schema"), and the
  // hub's database and table are created if absent (PermissionDenied saying
  // which grant is needed). Connection errors as MariaDbConnection::Connect
  // (Unavailable while the server is down or restarting).
  absl::StatusOr<MariaDbConnection*> Get();
  // Drops the connection when `status` says it may be unusable (anything but
  // a duplicate key), so the next Get() reconnects.
  void Check(const absl::Status& status);
  void Drop();

  // Known after the first successful Get(): newer panels soft-delete users
  // (a `deleted` column); such rows are not users the API lists.
  bool has_deleted_column() const { return has_deleted_column_; }
  // The panel's default language (str_config `lang`, "en" without one), for
  // users whose `lang` is NULL, as the API answers them.
  const std::string& default_lang() const { return default_lang_; }
  // `hub_database`.`applied_batches`, quoted for SQL.
  std::string AppliedBatchesTable() const;
  const ParentDatabaseOptions& options() const { return options_; }

 private:
  absl::Status CheckPanelSchema(MariaDbConnection& conn);
  absl::Status SetUpHubSchema(MariaDbConnection& conn);

  ParentDatabaseOptions options_;
  std::unique_ptr<MariaDbConnection> conn_;
  bool has_deleted_column_ = false;
  std::string default_lang_ = "en";
};

// True for a plain SQL name [A-Za-z0-9_]{1,64} (database names in config).
bool IsPlainSqlName(const std::string& name);

}  // namespace hsync::hub
