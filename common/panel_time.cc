#include "common/panel_time.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hsync {
namespace {

// Debian's abseil is built with its own absl::string_view (not std::string_view).
inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// Reads exactly `width` decimal digits at `text[pos]`; false on anything else.
bool ReadDigits(std::string_view text, size_t pos, size_t width, int64_t* out) {
  int64_t value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

// Parses the "YYYY-MM-DD" prefix of `text` (length already checked).
bool ReadDate(std::string_view text, int64_t* year, int64_t* month, int64_t* day) {
  return ReadDigits(text, 0, 4, year) && text[4] == '-' && ReadDigits(text, 5, 2, month) &&
         text[7] == '-' && ReadDigits(text, 8, 2, day);
}

absl::Status BadFormat(std::string_view text, std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid panel date/time \"", Av(text), "\", expected ", Av(expected)));
}

}  // namespace

std::string FormatPanelDate(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

std::string FormatPanelDateTime(absl::CivilSecond t) {
  return absl::StrFormat("%04d-%02d-%02d %02d:%02d:%02d", t.year(), t.month(), t.day(),
                         t.hour(), t.minute(), t.second());
}

absl::StatusOr<absl::CivilDay> ParsePanelDate(std::string_view text) {
  constexpr std::string_view kExpected = "YYYY-MM-DD";
  if (text.size() != kExpected.size()) return BadFormat(text, kExpected);
  int64_t year, month, day;
  if (!ReadDate(text, &year, &month, &day)) return BadFormat(text, kExpected);
  const absl::CivilDay result(year, static_cast<int>(month), static_cast<int>(day));
  // CivilDay normalises out-of-range fields (2024-02-30 -> 2024-03-01): reject those.
  if (year < 1 || result.year() != year || result.month() != month || result.day() != day) {
    return absl::InvalidArgumentError(absl::StrCat("invalid calendar date \"", Av(text), "\""));
  }
  return result;
}

absl::StatusOr<absl::CivilSecond> ParsePanelDateTime(std::string_view text) {
  constexpr std::string_view kExpected = "YYYY-MM-DD HH:MM:SS";
  if (text.size() != kExpected.size()) return BadFormat(text, kExpected);
  int64_t year, month, day, hour, minute, second;
  if (!ReadDate(text, &year, &month, &day) || text[10] != ' ' ||
      !ReadDigits(text, 11, 2, &hour) || text[13] != ':' || !ReadDigits(text, 14, 2, &minute) ||
      text[16] != ':' || !ReadDigits(text, 17, 2, &second)) {
    return BadFormat(text, kExpected);
  }
  const absl::CivilSecond result(year, static_cast<int>(month), static_cast<int>(day),
                                 static_cast<int>(hour), static_cast<int>(minute),
                                 static_cast<int>(second));
  if (year < 1 || result.year() != year || result.month() != month || result.day() != day ||
      result.hour() != hour || result.minute() != minute || result.second() != second) {
    return absl::InvalidArgumentError(absl::StrCat("invalid calendar date/time \"", Av(text), "\""));
  }
  return result;
}

absl::TimeZone PanelTimeZone() { return absl::LocalTimeZone(); }

absl::CivilDay PanelToday() { return absl::ToCivilDay(absl::Now(), PanelTimeZone()); }

}  // namespace hsync
