// Rows of the panel's `user` and `admin_user` tables (PANEL.md §2), as panelsim holds them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/civil_time.h"

namespace hsync::panelsim {

struct UserRecord {
  int64_t id = 0;
  std::string uuid;
  std::string name;
  int64_t usage_limit = 0;    // bytes
  int64_t current_usage = 0;  // bytes
  int64_t package_days = 0;
  std::optional<std::string> mode;  // NULL only in migrated installs
  std::optional<absl::CivilDay> start_date;
  std::optional<absl::CivilDay> last_reset_time;
  std::string last_online;  // "YYYY-MM-DD HH:MM:SS" as stored
  bool enable = true;
  std::optional<std::string> comment;
  std::optional<int64_t> telegram_id;
  std::optional<std::string> lang;
  std::optional<int64_t> added_by;
  std::optional<std::string> added_by_uuid;  // uuid of the admin row `added_by`
  std::optional<std::string> ed25519_private_key;
  std::optional<std::string> ed25519_public_key;
  std::optional<std::string> wg_pk;
  std::optional<std::string> wg_pub;
  std::optional<std::string> wg_psk;
};

struct AdminRecord {
  int64_t id = 0;
  std::string uuid;
  std::string mode;  // super_admin | admin | agent
  std::optional<int64_t> parent_admin_id;
};

}  // namespace hsync::panelsim
