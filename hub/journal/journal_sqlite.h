// Thin RAII wrappers over the SQLite C API for the journal: a connection and
// prepared statements, with every error turned into an absl::Status that names
// the operation. Not thread-safe: one owner thread (or an outside mutex) each.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hsync::hub {

class SqliteStatement;

class SqliteDb {
 public:
  // Opens (creating if missing) the database file. `busy_timeout_ms` is how long
  // a statement waits for another connection's lock before failing.
  static absl::StatusOr<SqliteDb> Open(const std::string& path, int busy_timeout_ms);
  SqliteDb(SqliteDb&& other) noexcept;
  SqliteDb& operator=(SqliteDb&& other) noexcept;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  // Runs one or more statements without results (schema, pragmas, BEGIN/COMMIT).
  absl::Status Exec(std::string_view sql);
  // Compiles `sql` once; the statement is reused with Reset()/Bind*().
  absl::StatusOr<SqliteStatement> Prepare(std::string_view sql);
  // Runs a query whose first row's first column is a text value (e.g. PRAGMA journal_mode).
  absl::StatusOr<std::string> QueryText(std::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  int64_t Changes() const;
  sqlite3* raw() const { return db_; }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// A prepared statement. Bind indexes start at 1, column indexes at 0.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  // Resets the statement and clears its bindings, ready for the next use.
  void Reset();
  void BindInt64(int index, int64_t value);
  // Text and blobs are bound without copying: the data must outlive Step().
  void BindText(int index, std::string_view value);
  void BindBlob(int index, std::string_view value);
  void BindNull(int index);
  // Binds the value or NULL.
  void BindOptionalInt64(int index, std::optional<int64_t> value);

  // Advances: true = a row is available, false = done. Errors carry the SQL text.
  absl::StatusOr<bool> Step();
  // Step() expecting no result row (INSERT/UPDATE/DELETE), then Reset().
  absl::Status Run();

  int64_t ColumnInt64(int column) const;
  bool ColumnIsNull(int column) const;
  std::string ColumnText(int column) const;
  std::string ColumnBlob(int column) const;

 private:
  friend class SqliteDb;
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// uint64 values (stream ids, byte counts) are stored in SQLite's signed 64-bit
// INTEGER by reinterpreting the bits; these convert both ways losslessly.
inline int64_t ToSqlInt(uint64_t v) { return static_cast<int64_t>(v); }
inline uint64_t FromSqlInt(int64_t v) { return static_cast<uint64_t>(v); }

}  // namespace hsync::hub
