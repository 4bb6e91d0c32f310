// Dates and times in the panel's text formats, and protobuf Timestamp glue.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace hsync {

// "Never online" in the panel's last_online.
inline constexpr std::string_view kNeverOnline = "0001-01-01 00:00:00";

// "YYYY-MM-DD".
std::string FormatPanelDate(absl::CivilDay day);
// "YYYY-MM-DD HH:MM:SS".
std::string FormatPanelDateTime(absl::CivilSecond t);
// Strict "YYYY-MM-DD" (exactly 10 chars, valid calendar date).
absl::StatusOr<absl::CivilDay> ParsePanelDate(std::string_view text);
// Strict "YYYY-MM-DD HH:MM:SS" (exactly 19 chars, valid date and time).
// "0001-01-01 00:00:00" parses to year 1.
absl::StatusOr<absl::CivilSecond> ParsePanelDateTime(std::string_view text);

// The zone the panel and our daemons read "today" in: the machine's local zone.
absl::TimeZone PanelTimeZone();
// Today's date in PanelTimeZone().
absl::CivilDay PanelToday();

}  // namespace hsync
