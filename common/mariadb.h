// A thin, exception-free wrapper over libmysqlclient (MariaDB Connector/C):
// one connection, text queries, prepared statements, transactions.
// A connection is not thread-safe; use one per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct st_mysql;
struct st_mysql_stmt;

namespace hsync {

struct MariaDbOptions {
  std::string unix_socket;  // preferred; empty -> host/port
  std::string host = "localhost";
  int port = 0;
  std::string user = "root";
  std::string password;
  std::string database;  // may be empty
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration read_timeout = absl::Seconds(30);
};

// NULL is std::monostate.
using SqlValue = std::variant<std::monostate, int64_t, uint64_t, double, std::string>;

// A fully fetched result. Values are text as the server sent them; NULL = nullopt.
struct ResultSet {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Index of `name` in columns, or -1.
  int ColumnIndex(std::string_view name) const;
};

class PreparedStatement {
 public:
  ~PreparedStatement();
  // Binds `params` to the '?' placeholders in order and runs the statement.
  // Returns the number of affected rows.
  absl::StatusOr<uint64_t> Execute(const std::vector<SqlValue>& params);
  // Same, for a statement that returns rows.
  absl::StatusOr<ResultSet> Query(const std::vector<SqlValue>& params);

 private:
  friend class MariaDbConnection;
  explicit PreparedStatement(st_mysql_stmt* stmt) : stmt_(stmt) {}
  st_mysql_stmt* stmt_;
};

class MariaDbConnection {
 public:
  // Connects (utf8mb4, autocommit on). Errors: Unavailable when the server
  // cannot be reached, PermissionDenied on bad credentials, NotFound for an
  // unknown database; the message names socket/host and database, never the password.
  static absl::StatusOr<std::unique_ptr<MariaDbConnection>> Connect(const MariaDbOptions& options);
  ~MariaDbConnection();

  // Runs a statement that returns no rows; returns affected rows.
  absl::StatusOr<uint64_t> Execute(std::string_view sql);
  absl::StatusOr<ResultSet> Query(std::string_view sql);
  absl::StatusOr<std::unique_ptr<PreparedStatement>> Prepare(std::string_view sql);
  // Returns `text` as a quoted SQL string literal ('it''s' style, server escaping).
  std::string Quote(std::string_view text);
  uint64_t LastInsertId() const;

  absl::Status Begin();
  absl::Status Commit();
  absl::Status Rollback();

  // True if the server answers.
  bool Ping();
  const MariaDbOptions& options() const { return options_; }

 private:
  MariaDbConnection(st_mysql* mysql, MariaDbOptions options) : mysql_(mysql), options_(std::move(options)) {}
  st_mysql* mysql_;
  MariaDbOptions options_;
};

// Begins on construction (check status()), rolls back on destruction unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(MariaDbConnection& conn);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const absl::Status& status() const { return begin_status_; }
  absl::Status Commit();

 private:
  MariaDbConnection& conn_;
  absl::Status begin_status_;
  bool done_ = false;
};

// Maps a MariaDB client/server errno to a status code: lost connection and
// can't connect -> Unavailable; deadlock/lock wait timeout -> Aborted;
// access denied -> PermissionDenied; unknown database/table -> NotFound;
// duplicate key -> AlreadyExists; everything else -> Internal.
absl::Status MariaDbError(unsigned int error_number, std::string_view message, std::string_view context);

}  // namespace hsync
