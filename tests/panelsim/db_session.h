// One MariaDB connection per thread for panelsim, with a cache of prepared
// statements. A statement that fails because the server went away is retried
// once on a fresh connection (outside transactions only).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mariadb.h"

namespace hsync::panelsim {

class DbSession {
 public:
  // Sets the connection options every thread uses. Call once before ForThisThread().
  static void Configure(const MariaDbOptions& options);
  // The configured options and database name.
  static MariaDbOptions ConfiguredOptions();
  static std::string DatabaseName();
  // This thread's session (connects lazily).
  static DbSession& ForThisThread();

  // Runs `sql` with '?' placeholders bound to `params` (prepared and cached).
  absl::StatusOr<ResultSet> Query(std::string_view sql, const std::vector<SqlValue>& params = {});
  // Same for statements without rows; returns affected rows.
  absl::StatusOr<uint64_t> Execute(std::string_view sql, const std::vector<SqlValue>& params = {});
  // Plain text query, not cached (for SQL that varies, e.g. IN lists).
  absl::StatusOr<ResultSet> QueryText(std::string_view sql);
  // Plain text statement (DDL, multi-row inserts built with Quote()).
  absl::StatusOr<uint64_t> ExecuteText(std::string_view sql);
  // SELECT LAST_INSERT_ID() on this connection.
  absl::StatusOr<int64_t> LastInsertId();
  // Quotes `text` as an SQL string literal.
  absl::StatusOr<std::string> Quote(std::string_view text);

  absl::Status Begin();
  absl::Status Commit();
  absl::Status Rollback();

 private:
  DbSession() = default;
  absl::Status EnsureConnected();
  void Drop();
  absl::StatusOr<PreparedStatement*> Statement(std::string_view sql);

  std::unique_ptr<MariaDbConnection> conn_;
  std::map<std::string, std::unique_ptr<PreparedStatement>, std::less<>> statements_;
  bool in_transaction_ = false;
};

// Extracts "(errno, message)" from a status made by MariaDbError, for
// database-error texts that look like the panel's; falls back to the whole message.
std::string DatabaseErrorText(const absl::Status& status);

}  // namespace hsync::panelsim
