#include "hub/parent/parent_database.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace hsync::hub {
namespace {

// Every column of the panel's `user` table the hub reads (roster) or writes (usage).
constexpr const char* kRequiredUserColumns[] = {
    "uuid",           "name",          "usage_limit", "current_usage",
    "package_days",   "start_date",    "mode",        "last_reset_time",
    "last_online",    "enable",        "comment",     "telegram_id",
    "lang",           "ed25519_private_key", "ed25519_public_key", "wg_pk",
    "wg_pub",         "wg_psk"};

}  // namespace

bool IsPlainSqlName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_';
    if (!ok) return false;
  }
  return true;
}

ParentDatabase::ParentDatabase(ParentDatabaseOptions options) : options_(std::move(options)) {}
ParentDatabase::~ParentDatabase() = default;

std::string ParentDatabase::AppliedBatchesTable() const {
  return absl::StrCat("`", options_.hub_database, "`.`", kAppliedBatchesTable, "`");
}

absl::StatusOr<MariaDbConnection*> ParentDatabase::Get() {
  if (conn_ != nullptr) return conn_.get();
  MariaDbOptions o;
  o.unix_socket = options_.socket;
  o.user = options_.user;
  o.password = options_.password;
  o.database = options_.database;
  o.connect_timeout = options_.connect_timeout;
  o.read_timeout = options_.read_timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<MariaDbConnection> conn, MariaDbConnection::Connect(o));
  RETURN_IF_ERROR(CheckPanelSchema(*conn));
  RETURN_IF_ERROR(SetUpHubSchema(*conn));
  conn_ = std::move(conn);
  return conn_.get();
}

void ParentDatabase::Check(const absl::Status& status) {
  if (!status.ok() && status.code() != absl::StatusCode::kAlreadyExists) Drop();
}

void ParentDatabase::Drop() { conn_.reset(); }

absl::Status ParentDatabase::CheckPanelSchema(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(ResultSet columns,
                   conn.Query(absl::StrCat("SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                                           "WHERE TABLE_SCHEMA = ",
                                           conn.Quote(options_.database),
                                           " AND TABLE_NAME = 'user'")));
  std::set<std::string> have;
  for (const auto& row : columns.rows) {
    if (row[0].has_value()) have.insert(*row[0]);
  }
  if (have.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "parent database ", options_.database, " has no table `user` visible to MariaDB user ",
        options_.user, ": not Hiddify's database, or no SELECT grant on it"));
  }
  std::vector<std::string> missing;
  for (const char* column : kRequiredUserColumns) {
    if (have.count(column) == 0) missing.push_back(column);
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "parent database ", options_.database, ": table `user` lacks column(s) ",
        absl::StrJoin(missing, ", "), " (not a Hiddify panel schema this hub knows)"));
  }
  has_deleted_column_ = have.count("deleted") > 0;
  // The language the API answers for users without one (hconfig lang).
  absl::StatusOr<ResultSet> lang = conn.Query(
      "SELECT `value` FROM str_config WHERE `key` = 'lang' ORDER BY child_id LIMIT 1");
  default_lang_ = "en";
  if (lang.ok() && !lang->rows.empty() && lang->rows[0][0].has_value() &&
      !lang->rows[0][0]->empty()) {
    default_lang_ = *lang->rows[0][0];
  }
  return absl::OkStatus();
}

absl::Status ParentDatabase::SetUpHubSchema(MariaDbConnection& conn) {
  const std::string grant =
      absl::StrCat("GRANT ALL ON `", options_.hub_database, "`.* TO '", options_.user,
                   "'@'localhost'");
  absl::Status created = conn.Execute(absl::StrCat("CREATE DATABASE IF NOT EXISTS `",
                                                   options_.hub_database, "`"))
                             .status();
  if (!created.ok()) {
    return absl::Status(created.code(),
                        absl::StrCat("cannot create the hub's database ", options_.hub_database,
                                     " on the parent (", grant, "): ", created.message()));
  }
  // batch_id: the journal's batch id. users / orphaned: what the batch did,
  // for the journal when it is settled after a crash.
  absl::Status table =
      conn.Execute(absl::StrCat("CREATE TABLE IF NOT EXISTS ", AppliedBatchesTable(),
                                " (batch_id BIGINT NOT NULL PRIMARY KEY, "
                                "applied_at DATETIME NOT NULL, "
                                "users INT NOT NULL, "
                                "orphaned MEDIUMTEXT NOT NULL) ENGINE=InnoDB"))
          .status();
  if (!table.ok()) {
    return absl::Status(table.code(),
                        absl::StrCat("cannot create ", AppliedBatchesTable(), " on the parent (",
                                     grant, "): ", table.message()));
  }
  ASSIGN_OR_RETURN(ResultSet engine,
                   conn.Query(absl::StrCat("SELECT ENGINE FROM information_schema.TABLES WHERE "
                                           "TABLE_SCHEMA = ",
                                           conn.Quote(options_.hub_database),
                                           " AND TABLE_NAME = '", kAppliedBatchesTable, "'")));
  if (engine.rows.empty() || !engine.rows[0][0].has_value() || *engine.rows[0][0] != "InnoDB") {
    return absl::FailedPreconditionError(absl::StrCat(
        AppliedBatchesTable(), " is not an InnoDB table: it cannot share a transaction with "
                               "the panel's `user` table"));
  }
  return absl::OkStatus();
}

}  // namespace hsync::hub
