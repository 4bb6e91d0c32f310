// The panel's user object (PANEL.md §1): exactly 21 keys, sorted, compact,
// floats like Python's repr(), dates in the panel's formats.
#pragma once

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "tests/panelsim/user_record.h"

namespace hsync::panelsim {

// The language the panel reports for a user whose lang column is NULL.
inline constexpr char kPanelDefaultLang[] = "en";

void AppendUserJson(std::string* out, const UserRecord& user, absl::CivilDay today);
std::string UserJson(const UserRecord& user, absl::CivilDay today);
// A JSON array of users in the given order.
std::string UserListJson(const std::vector<UserRecord>& users, absl::CivilDay today);

// bytes / 2^30 printed like Python's repr() (negative values too).
std::string BytesAsPanelGiB(int64_t bytes);

}  // namespace hsync::panelsim
