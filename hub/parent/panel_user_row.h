// The panel's `user` row (PANEL.md §2) -> hiddify_sync::v1::User, exactly as
// the API's user object would carry it (PANEL.md §1): the same fields, NULLs
// as the API prints them, `lang` defaulted, is_active computed by PANEL.md
// §3's formula, and never the owning admin (added_by).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::hub {

// The column list to SELECT from `user` (unqualified, in the order
// PanelUserFromRow reads them).
const std::string& PanelUserColumns();

// enable and not (current_usage > usage_limit) and remaining_days >= 0, with
// remaining_days = package_days - (today - start_date) when started, else
// package_days, capped at 10000. Mode plays no part.
bool PanelIsActive(bool enable, int64_t usage_limit, int64_t current_usage, int64_t package_days,
                   const std::optional<absl::CivilDay>& start_date, absl::CivilDay today);

// One row (the columns of PanelUserColumns(), as text; NULL = nullopt).
// DataLoss naming the field for what the API's reader would refuse too
// (negative byte counts, malformed dates, an empty uuid); `*field` is then
// set to that column.
absl::StatusOr<hiddify_sync::v1::User> PanelUserFromRow(
    const std::vector<std::optional<std::string>>& row, absl::CivilDay today,
    const std::string& default_lang, std::string* field);

}  // namespace hsync::hub
