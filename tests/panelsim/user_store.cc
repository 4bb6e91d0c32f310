#include "tests/panelsim/user_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/panel_time.h"
#include "common/status_macros.h"

namespace hsync::panelsim {
namespace {

absl::StatusOr<int64_t> ParseInt(const std::optional<std::string>& text, const char* what) {
  int64_t value = 0;
  if (!text.has_value() || !absl::SimpleAtoi(*text, &value)) {
    return absl::InternalError(absl::StrCat("unreadable ", what, " in the user table"));
  }
  return value;
}

std::optional<int64_t> ParseOptionalInt(const std::optional<std::string>& text) {
  int64_t value = 0;
  if (!text.has_value() || !absl::SimpleAtoi(*text, &value)) return std::nullopt;
  return value;
}

std::optional<absl::CivilDay> ParseOptionalDay(const std::optional<std::string>& text) {
  if (!text.has_value()) return std::nullopt;
  absl::StatusOr<absl::CivilDay> day = ParsePanelDate(*text);
  if (!day.ok()) return std::nullopt;
  return *day;
}

absl::StatusOr<AdminRecord> ParseAdminRow(const std::vector<std::optional<std::string>>& row) {
  AdminRecord admin;
  ASSIGN_OR_RETURN(admin.id, ParseInt(row[0], "admin id"));
  admin.uuid = row[1].value_or("");
  admin.mode = row[2].value_or("");
  admin.parent_admin_id = ParseOptionalInt(row[3]);
  return admin;
}

}  // namespace

const char* UserStore::UserColumnsSql() {
  return "u.id, u.uuid, u.name, u.usage_limit, u.current_usage, u.package_days, u.mode, "
         "DATE_FORMAT(u.start_date, '%Y-%m-%d'), DATE_FORMAT(u.last_reset_time, '%Y-%m-%d'), "
         "DATE_FORMAT(u.last_online, '%Y-%m-%d %H:%i:%s'), u.enable, u.comment, u.telegram_id, "
         "u.lang, u.added_by, a.uuid, u.ed25519_private_key, u.ed25519_public_key, u.wg_pk, "
         "u.wg_pub, u.wg_psk";
}

absl::StatusOr<UserRecord> UserStore::ParseUserRow(ResultSet& rs, size_t index) {
  auto& row = rs.rows[index];
  if (row.size() < kColumnCount) return absl::InternalError("short user row");
  UserRecord u;
  ASSIGN_OR_RETURN(u.id, ParseInt(row[kId], "id"));
  u.uuid = std::move(row[kUuid]).value_or("");
  u.name = std::move(row[kName]).value_or("");
  ASSIGN_OR_RETURN(u.usage_limit, ParseInt(row[kUsageLimit], "usage_limit"));
  ASSIGN_OR_RETURN(u.current_usage, ParseInt(row[kCurrentUsage], "current_usage"));
  ASSIGN_OR_RETURN(u.package_days, ParseInt(row[kPackageDays], "package_days"));
  u.mode = std::move(row[kMode]);
  u.start_date = ParseOptionalDay(row[kStartDate]);
  u.last_reset_time = ParseOptionalDay(row[kLastResetTime]);
  u.last_online = std::move(row[kLastOnline]).value_or(std::string(kNeverOnline));
  u.enable = row[kEnable].has_value() && *row[kEnable] != "0";
  u.comment = std::move(row[kComment]);
  u.telegram_id = ParseOptionalInt(row[kTelegramId]);
  u.lang = std::move(row[kLang]);
  u.added_by = ParseOptionalInt(row[kAddedBy]);
  u.added_by_uuid = std::move(row[kAddedByUuid]);
  u.ed25519_private_key = std::move(row[kEdPriv]);
  u.ed25519_public_key = std::move(row[kEdPub]);
  u.wg_pk = std::move(row[kWgPk]);
  u.wg_pub = std::move(row[kWgPub]);
  u.wg_psk = std::move(row[kWgPsk]);
  return u;
}

absl::StatusOr<std::optional<AdminRecord>> UserStore::FindAdminByUuid(std::string_view uuid) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   db_.Query("SELECT id, uuid, mode, parent_admin_id FROM admin_user "
                             "WHERE uuid = ? ORDER BY id LIMIT 1",
                             {std::string(uuid)}));
  if (rs.rows.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(AdminRecord admin, ParseAdminRow(rs.rows[0]));
  return admin;
}

absl::StatusOr<std::optional<AdminRecord>> UserStore::FindAdminById(int64_t id) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   db_.Query("SELECT id, uuid, mode, parent_admin_id FROM admin_user WHERE id = ?",
                             {id}));
  if (rs.rows.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(AdminRecord admin, ParseAdminRow(rs.rows[0]));
  return admin;
}

absl::StatusOr<std::vector<AdminRecord>> UserStore::AllAdmins() {
  ASSIGN_OR_RETURN(ResultSet rs,
                   db_.Query("SELECT id, uuid, mode, parent_admin_id FROM admin_user ORDER BY id"));
  std::vector<AdminRecord> out;
  out.reserve(rs.rows.size());
  for (const auto& row : rs.rows) {
    ASSIGN_OR_RETURN(AdminRecord admin, ParseAdminRow(row));
    out.push_back(std::move(admin));
  }
  return out;
}

absl::StatusOr<AdminRecord> UserStore::CreateAgentAdmin(const std::string& uuid,
                                                        int64_t parent_id) {
  RETURN_IF_ERROR(db_.Execute(
                         "INSERT INTO admin_user (mode, can_add_admin, max_users, max_active_users, "
                         "parent_admin_id, uuid, name) VALUES ('agent', 0, 100, 100, ?, ?, 'unknown')",
                         {parent_id, uuid})
                      .status());
  ASSIGN_OR_RETURN(std::optional<AdminRecord> admin, FindAdminByUuid(uuid));
  if (!admin.has_value()) return absl::InternalError("the new admin row vanished");
  return *admin;
}

absl::StatusOr<std::optional<UserStore::AdminAndUser>> UserStore::FindAdminAndUser(
    std::string_view api_key, std::string_view user_uuid) {
  static const std::string sql = absl::StrCat(
      "SELECT ", UserColumnsSql(),
      ", k.id, k.uuid, k.mode, k.parent_admin_id FROM admin_user k "
      "LEFT JOIN user u ON u.uuid = ? LEFT JOIN admin_user a ON a.id = u.added_by "
      "WHERE k.uuid = ? ORDER BY k.id, u.id LIMIT 1");
  ASSIGN_OR_RETURN(ResultSet rs, db_.Query(sql, {std::string(user_uuid), std::string(api_key)}));
  if (rs.rows.empty()) return std::nullopt;
  auto& row = rs.rows[0];
  if (row.size() < kColumnCount + 4) return absl::InternalError("short admin/user row");
  AdminAndUser out;
  const std::vector<std::optional<std::string>> admin_cells(row.begin() + kColumnCount,
                                                            row.end());
  ASSIGN_OR_RETURN(out.admin, ParseAdminRow(admin_cells));
  if (row[kId].has_value()) {
    ASSIGN_OR_RETURN(UserRecord user, ParseUserRow(rs, 0));
    out.user = std::move(user);
  }
  return out;
}

absl::StatusOr<std::optional<UserRecord>> UserStore::FindUserByUuid(std::string_view uuid) {
  static const std::string sql = absl::StrCat(
      "SELECT ", UserColumnsSql(),
      " FROM user u LEFT JOIN admin_user a ON a.id = u.added_by WHERE u.uuid = ? ORDER BY u.id "
      "LIMIT 1");
  ASSIGN_OR_RETURN(ResultSet rs, db_.Query(sql, {std::string(uuid)}));
  if (rs.rows.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(UserRecord user, ParseUserRow(rs, 0));
  return user;
}

absl::StatusOr<std::optional<UserRecord>> UserStore::FindUserById(int64_t id) {
  static const std::string sql =
      absl::StrCat("SELECT ", UserColumnsSql(),
                   " FROM user u LEFT JOIN admin_user a ON a.id = u.added_by WHERE u.id = ?");
  ASSIGN_OR_RETURN(ResultSet rs, db_.Query(sql, {id}));
  if (rs.rows.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(UserRecord user, ParseUserRow(rs, 0));
  return user;
}

absl::Status UserStore::StreamUsers(const std::optional<std::vector<int64_t>>& added_by_in,
                                    const std::function<void(const RowCells&)>& each) {
  std::string sql = absl::StrCat("SELECT ", UserColumnsSql(),
                                 " FROM user u LEFT JOIN admin_user a ON a.id = u.added_by");
  if (added_by_in.has_value()) {
    if (added_by_in->empty()) return absl::OkStatus();
    absl::StrAppend(&sql, " WHERE u.added_by IN (", absl::StrJoin(*added_by_in, ","), ")");
  }
  absl::StrAppend(&sql, " ORDER BY u.id");
  return RowStreamer::ForThisThread().Stream(sql, each);
}

absl::StatusOr<int64_t> UserStore::InsertUser(const std::vector<ColumnValue>& columns) {
  std::vector<std::string> names;
  std::vector<SqlValue> values;
  for (const auto& [name, value] : columns) {
    names.push_back(absl::StrCat("`", name, "`"));
    values.push_back(value);
  }
  const std::string sql =
      absl::StrCat("INSERT INTO user (", absl::StrJoin(names, ", "), ") VALUES (",
                   absl::StrJoin(std::vector<std::string>(names.size(), "?"), ", "), ")");
  RETURN_IF_ERROR(db_.Execute(sql, values).status());
  return db_.LastInsertId();
}

absl::Status UserStore::UpdateUser(int64_t id, const std::vector<ColumnValue>& sets) {
  if (sets.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  std::vector<SqlValue> values;
  for (const auto& [name, value] : sets) {
    parts.push_back(absl::StrCat("`", name, "` = ?"));
    values.push_back(value);
  }
  values.emplace_back(std::in_place_index<1>, id);
  const std::string sql =
      absl::StrCat("UPDATE user SET ", absl::StrJoin(parts, ", "), " WHERE id = ?");
  return db_.Execute(sql, values).status();
}

absl::StatusOr<bool> UserStore::DeleteUser(int64_t id) {
  ASSIGN_OR_RETURN(uint64_t affected, db_.Execute("DELETE FROM user WHERE id = ?", {id}));
  return affected > 0;
}

}  // namespace hsync::panelsim
