// SQL access to the `user` and `admin_user` tables for the current thread's
// DbSession. Every method is one short statement (or a small fixed sequence);
// callers compose them into the panel's semantics.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mariadb.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/row_streamer.h"
#include "tests/panelsim/user_record.h"

namespace hsync::panelsim {

// One column assignment of an UPDATE/INSERT: column name and value (NULL = monostate).
using ColumnValue = std::pair<std::string, SqlValue>;

class UserStore {
 public:
  explicit UserStore(DbSession& db) : db_(db) {}

  // Admin whose uuid equals `uuid` (database collation: case-insensitive), if any.
  absl::StatusOr<std::optional<AdminRecord>> FindAdminByUuid(std::string_view uuid);
  absl::StatusOr<std::optional<AdminRecord>> FindAdminById(int64_t id);
  absl::StatusOr<std::vector<AdminRecord>> AllAdmins();
  // Inserts an agent admin named "unknown" under `parent_id`; returns it.
  absl::StatusOr<AdminRecord> CreateAgentAdmin(const std::string& uuid, int64_t parent_id);

  // The admin whose uuid is `api_key` and, in the same round trip, the user
  // `user_uuid` (nullopt user if none); nullopt if no such admin.
  struct AdminAndUser {
    AdminRecord admin;
    std::optional<UserRecord> user;
  };
  absl::StatusOr<std::optional<AdminAndUser>> FindAdminAndUser(std::string_view api_key,
                                                               std::string_view user_uuid);

  // User whose uuid equals `uuid` (case-insensitive like the panel's query).
  absl::StatusOr<std::optional<UserRecord>> FindUserByUuid(std::string_view uuid);
  absl::StatusOr<std::optional<UserRecord>> FindUserById(int64_t id);
  // Streams the rows (UserColumnsSql()) of the users in id order to `each`;
  // `added_by_in` = nullopt streams every user.
  absl::Status StreamUsers(const std::optional<std::vector<int64_t>>& added_by_in,
                           const std::function<void(const RowCells&)>& each);

  // INSERT INTO user (columns...) VALUES (...); returns the new id.
  absl::StatusOr<int64_t> InsertUser(const std::vector<ColumnValue>& columns);
  // UPDATE user SET ... WHERE id = `id`; no-op when `sets` is empty.
  absl::Status UpdateUser(int64_t id, const std::vector<ColumnValue>& sets);
  // Returns false if no row was deleted.
  absl::StatusOr<bool> DeleteUser(int64_t id);

  // Column positions in UserColumnsSql().
  enum Column {
    kId, kUuid, kName, kUsageLimit, kCurrentUsage, kPackageDays, kMode, kStartDate,
    kLastResetTime, kLastOnline, kEnable, kComment, kTelegramId, kLang, kAddedBy, kAddedByUuid,
    kEdPriv, kEdPub, kWgPk, kWgPub, kWgPsk, kColumnCount
  };
  // The SELECT list that ParseUserRow() understands (aliases u = user, a = admin_user).
  static const char* UserColumnsSql();
  // Reads row `row` of `rs` (its strings are moved out).
  static absl::StatusOr<UserRecord> ParseUserRow(ResultSet& rs, size_t row);

 private:
  DbSession& db_;
};

}  // namespace hsync::panelsim
