// The panel's user object (PANEL.md §1): exactly 21 keys, sorted, compact,
// floats like Python's repr(), dates in the panel's formats.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/time/civil_time.h"
#include "tests/panelsim/row_streamer.h"
#include "tests/panelsim/user_record.h"

namespace hsync::panelsim {

// The language the panel reports for a user whose lang column is NULL.
inline constexpr char kPanelDefaultLang[] = "en";

// What a user object is made of, as text slices (dates as stored, "YYYY-MM-DD").
struct UserJsonView {
  int64_t id = 0;
  std::string_view uuid;
  std::string_view name;
  std::string_view last_online;
  int64_t usage_limit = 0;
  int64_t current_usage = 0;
  int64_t package_days = 0;
  std::optional<std::string_view> mode, start_date, last_reset_time, comment, lang,
      added_by_uuid, ed25519_private_key, ed25519_public_key, wg_pk, wg_pub, wg_psk;
  std::optional<int64_t> telegram_id;
  bool enable = true;
  bool is_active = true;
};

void AppendUserJson(std::string* out, const UserJsonView& user);
// The object of `user` with is_active as of `today`.
std::string UserJson(const UserRecord& user, absl::CivilDay today);
// Appends the object of a row selected with UserStore::UserColumnsSql();
// false if the row is unreadable.
bool AppendUserJsonFromRow(std::string* out, const RowCells& row, absl::CivilDay today);

// bytes / 2^30 printed like Python's repr() (negative values too).
std::string BytesAsPanelGiB(int64_t bytes);

}  // namespace hsync::panelsim
