#include "tests/panelsim/schema_setup.h"

#include <random>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "tests/panelsim/key_generator.h"

namespace hsync::panelsim {
namespace {

constexpr char kAdminTable[] = R"sql(
CREATE TABLE IF NOT EXISTS `admin_user` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `mode` enum('super_admin','admin','agent') NOT NULL,
  `can_add_admin` tinyint(1) NOT NULL,
  `max_users` int(11) NOT NULL,
  `max_active_users` int(11) NOT NULL,
  `parent_admin_id` int(11) DEFAULT NULL,
  `uuid` varchar(36) NOT NULL,
  `name` varchar(512) NOT NULL,
  `username` varchar(100) DEFAULT NULL,
  `password` varchar(100) DEFAULT NULL,
  `comment` varchar(512) DEFAULT NULL,
  `telegram_id` bigint(20) DEFAULT NULL,
  `lang` enum('en','fa','ru','pt','zh','my') DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `ix_admin_user_uuid` (`uuid`),
  KEY `parent_admin_id` (`parent_admin_id`),
  KEY `ix_admin_user_username` (`username`),
  KEY `ix_admin_user_telegram_id` (`telegram_id`),
  CONSTRAINT `admin_user_ibfk_1` FOREIGN KEY (`parent_admin_id`) REFERENCES `admin_user` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci)sql";

constexpr char kUserTable[] = R"sql(
CREATE TABLE IF NOT EXISTS `user` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `last_online` datetime NOT NULL,
  `usage_limit` bigint(20) NOT NULL,
  `package_days` int(11) NOT NULL,
  `mode` enum('no_reset','monthly','weekly','daily') NOT NULL,
  `monthly` tinyint(1) DEFAULT NULL,
  `start_date` date DEFAULT NULL,
  `current_usage` bigint(20) NOT NULL,
  `last_reset_time` date DEFAULT NULL,
  `added_by` int(11) DEFAULT NULL,
  `max_ips` int(11) NOT NULL,
  `enable` tinyint(1) NOT NULL,
  `ed25519_private_key` varchar(500) DEFAULT NULL,
  `ed25519_public_key` varchar(100) DEFAULT NULL,
  `wg_pk` varchar(50) DEFAULT NULL,
  `wg_pub` varchar(50) DEFAULT NULL,
  `wg_psk` varchar(50) DEFAULT NULL,
  `uuid` varchar(36) NOT NULL,
  `name` varchar(512) NOT NULL,
  `username` varchar(100) DEFAULT NULL,
  `password` varchar(100) DEFAULT NULL,
  `comment` varchar(512) DEFAULT NULL,
  `telegram_id` bigint(20) DEFAULT NULL,
  `lang` enum('en','fa','ru','pt','zh','my') DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `ix_user_uuid` (`uuid`),
  KEY `added_by` (`added_by`),
  KEY `ix_user_username` (`username`),
  KEY `ix_user_telegram_id` (`telegram_id`),
  CONSTRAINT `user_ibfk_1` FOREIGN KEY (`added_by`) REFERENCES `admin_user` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci)sql";

absl::StatusOr<int64_t> CountRows(DbSession& db, const char* table) {
  ASSIGN_OR_RETURN(ResultSet rs, db.QueryText(absl::StrCat("SELECT COUNT(*) FROM `", table, "`")));
  int64_t n = 0;
  if (rs.rows.empty() || !absl::SimpleAtoi(rs.rows[0][0].value_or(""), &n)) {
    return absl::InternalError("COUNT(*) returned nothing");
  }
  return n;
}


// The panel's key/value settings (a child_id and a ConfigEnum key per row).
constexpr char kStrConfigTable[] = R"sql(
CREATE TABLE IF NOT EXISTS `str_config` (
  `child_id` int(11) NOT NULL DEFAULT 0,
  `key` varchar(128) NOT NULL,
  `value` varchar(2048) DEFAULT NULL,
  PRIMARY KEY (`child_id`, `key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci)sql";

// add_usage_json(usage_data, cur_time): for each {"uuid","usage"} of the JSON
// array, one atomic add with last_online and start_date, committed per user.
constexpr char kAddUsageJson[] = R"sql(
CREATE PROCEDURE add_usage_json(IN usage_data JSON, IN cur_time DATETIME)
BEGIN
  DECLARE finished BOOL DEFAULT FALSE;
  DECLARE one_uuid CHAR(36);
  DECLARE one_usage BIGINT;
  DECLARE rows_in CURSOR FOR
    SELECT j.uuid, j.bytes FROM JSON_TABLE(usage_data, '$[*]' COLUMNS (
      uuid CHAR(36) PATH '$.uuid', bytes BIGINT PATH '$.usage')) AS j;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET finished = TRUE;
  OPEN rows_in;
  each_row: LOOP
    FETCH rows_in INTO one_uuid, one_usage;
    IF finished THEN
      LEAVE each_row;
    END IF;
    UPDATE `user` SET current_usage = current_usage + one_usage, last_online = cur_time,
      start_date = IFNULL(start_date, DATE(cur_time))
    WHERE uuid = one_uuid;
    COMMIT;
  END LOOP;
  CLOSE rows_in;
END)sql";

}  // namespace

absl::Status CreateHiddifySchema(DbSession& db) {
  RETURN_IF_ERROR(db.ExecuteText(kAdminTable).status());
  RETURN_IF_ERROR(db.ExecuteText(kStrConfigTable).status());
  return db.ExecuteText(kUserTable).status();
}

absl::Status CreateStrConfigTable(DbSession& db) {
  return db.ExecuteText(kStrConfigTable).status();
}

absl::Status SetUpUsageProcedure(DbSession& db, PanelGeneration generation) {
  RETURN_IF_ERROR(db.ExecuteText("DROP PROCEDURE IF EXISTS add_usage_json").status());
  if (!HasAddUsageJson(generation)) return absl::OkStatus();
  return db.ExecuteText(kAddUsageJson).status();
}

absl::Status WriteStrConfig(DbSession& db, const std::string& key, const std::string& value) {
  return db.Execute("INSERT INTO str_config (child_id, `key`, value) VALUES (0, ?, ?) "
                    "ON DUPLICATE KEY UPDATE value = VALUES(value)",
                    {key, value})
      .status();
}

absl::Status EnsureOwnerAdmin(DbSession& db, const std::string& owner_uuid) {
  ASSIGN_OR_RETURN(int64_t admins, CountRows(db, "admin_user"));
  if (admins > 0) return absl::OkStatus();
  return db.Execute(
               "INSERT INTO admin_user (id, mode, can_add_admin, max_users, max_active_users, "
               "parent_admin_id, uuid, name) VALUES (1, 'super_admin', 1, 1000000, 1000000, NULL, "
               "?, 'owner')",
               {owner_uuid})
      .status();
}

absl::Status InsertDemoUsers(DbSession& db, int count, const SimClock& clock, uint64_t seed) {
  ASSIGN_OR_RETURN(int64_t users, CountRows(db, "user"));
  if (users > 0 || count <= 0) return absl::OkStatus();
  static const char* kFirst[] = {"amir", "sara", "reza", "mina", "ali", "neda", "omid", "lale",
                                 "kian", "yasi", "babak", "shirin", "dariush", "parisa", "hamed"};
  static const char* kLast[] = {"tehran", "shiraz", "tabriz", "isfahan", "mashhad", "yazd",
                                "rasht", "kerman", "qom", "ahvaz"};
  static const int kLimitsGiB[] = {10, 20, 30, 50, 100, 200, 500};
  static const int kDays[] = {30, 30, 30, 60, 90, 90, 180, 365};
  std::mt19937_64 rng(seed != 0 ? seed : std::random_device{}());
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const absl::CivilDay today = clock.Today();

  std::vector<std::string> rows;
  const auto flush = [&]() -> absl::Status {
    if (rows.empty()) return absl::OkStatus();
    const std::string sql = absl::StrCat(
        "INSERT INTO user (uuid, name, last_online, usage_limit, package_days, mode, monthly, "
        "start_date, current_usage, last_reset_time, added_by, max_ips, enable, username, "
        "password, comment, ed25519_private_key, ed25519_public_key, wg_pk, wg_pub, wg_psk) "
        "VALUES ",
        absl::StrJoin(rows, ","));
    rows.clear();
    return db.ExecuteText(sql).status();
  };
  for (int i = 0; i < count; ++i) {
    const std::string name =
        absl::StrCat(kFirst[pick(15)], "-", kLast[pick(10)], "-", i + 1);
    const int64_t limit = int64_t{kLimitsGiB[pick(7)]} * static_cast<int64_t>(kBytesPerGiB);
    const int days = kDays[pick(8)];
    const int mode_roll = pick(10);
    const char* mode = mode_roll < 7 ? "no_reset" : mode_roll < 9 ? "monthly" : "weekly";
    const bool started = pick(4) != 0;
    std::string start = "NULL";
    std::string last_online = absl::StrCat("'", std::string(kNeverOnline), "'");
    int64_t usage = 0;
    if (started) {
      const absl::CivilDay start_day = today - pick(days);
      start = absl::StrCat("'", FormatPanelDate(start_day), "'");
      usage = static_cast<int64_t>(static_cast<double>(limit) * (pick(1000) / 1000.0) * 0.9);
      last_online = absl::StrCat(
          "'", FormatPanelDateTime(absl::CivilSecond(today - pick(3)) + pick(86400)), "'");
    }
    const Ed25519Keys ed = GenerateEd25519Keys();
    const WireGuardKeys wg = GenerateWireGuardKeys();
    ASSIGN_OR_RETURN(std::string q_priv, db.Quote(ed.private_openssh));
    rows.push_back(absl::StrCat(
        "('", RandomUuid4(), "','", name, "',", last_online, ",", limit, ",", days, ",'", mode,
        "',0,", start, ",", usage, ",'", FormatPanelDate(today), "',1,100,",
        pick(20) == 0 ? 0 : 1, ",'", name, "','", RandomAlnum(16), "','demo user',", q_priv,
        ",'", ed.public_openssh, "','", wg.private_key, "','", wg.public_key, "','",
        wg.preshared_key, "')"));
    if (rows.size() >= 500) RETURN_IF_ERROR(flush());
  }
  return flush();
}

}  // namespace hsync::panelsim
