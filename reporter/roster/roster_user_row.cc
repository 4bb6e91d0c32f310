#include "reporter/roster/roster_user_row.h"

#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"

namespace hsync::reporter {
namespace {

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::optional<std::string> NullIfEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

absl::Status CheckLength(std::string_view field, const std::string& value, size_t max_chars) {
  if (Utf8Length(value) > max_chars) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": longer than ", max_chars, " characters"));
  }
  return absl::OkStatus();
}

bool OneOf(const std::string& v, std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (v == a) return true;
  }
  return false;
}

}  // namespace

bool IsCanonicalUuid(std::string_view t) {
  if (t.size() != 36) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (t[i] != '-') return false;
    } else if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<UserRow> UserRowFromRoster(const hiddify_sync::v1::User& u) {
  UserRow row;
  row.uuid = absl::AsciiStrToLower(u.uuid());
  if (!IsCanonicalUuid(row.uuid)) return absl::InvalidArgumentError("uuid: not a canonical uuid");
  if (absl::Status s = CheckLength("name", u.name(), 512); !s.ok()) return s;
  if (u.usage_limit_bytes() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError("usage_limit_bytes: out of range");
  }
  if (!OneOf(u.mode(), {"no_reset", "monthly", "weekly", "daily"})) {
    return absl::InvalidArgumentError(absl::StrCat("mode: unknown value \"", u.mode(), "\""));
  }
  if (absl::Status s = CheckLength("comment", u.comment(), 512); !s.ok()) return s;
  std::optional<std::string> start_date;
  if (u.has_start_date() && !u.start_date().empty()) {
    if (!ParsePanelDate(u.start_date()).ok()) {
      return absl::InvalidArgumentError("start_date: not YYYY-MM-DD");
    }
    start_date = u.start_date();
  }
  std::optional<std::string> last_reset;
  if (u.has_last_reset_time() && !u.last_reset_time().empty()) {
    // "YYYY-MM-DD 00:00:00" in the API; the column is a DATE.
    std::string day = u.last_reset_time().substr(0, 10);
    if (!ParsePanelDate(day).ok() ||
        (u.last_reset_time().size() != 10 && !ParsePanelDateTime(u.last_reset_time()).ok())) {
      return absl::InvalidArgumentError("last_reset_time: not YYYY-MM-DD[ HH:MM:SS]");
    }
    last_reset = day;
  }
  if (!u.lang().empty() && !OneOf(u.lang(), {"en", "fa", "ru", "pt", "zh", "my"})) {
    return absl::InvalidArgumentError(absl::StrCat("lang: unknown value \"", u.lang(), "\""));
  }
  if (absl::Status s = CheckLength("ed25519_private_key", u.ed25519_private_key(), 500); !s.ok()) return s;
  if (absl::Status s = CheckLength("ed25519_public_key", u.ed25519_public_key(), 100); !s.ok()) return s;
  if (absl::Status s = CheckLength("wg_pk", u.wg_pk(), 50); !s.ok()) return s;
  if (absl::Status s = CheckLength("wg_pub", u.wg_pub(), 50); !s.ok()) return s;
  if (absl::Status s = CheckLength("wg_psk", u.wg_psk(), 50); !s.ok()) return s;

  row.values = {
      u.name(),
      absl::StrCat(u.usage_limit_bytes()),
      absl::StrCat(u.package_days()),
      u.mode(),
      NullIfEmpty(u.comment()),
      start_date,
      last_reset,
      u.has_telegram_id() ? std::optional<std::string>(absl::StrCat(u.telegram_id())) : std::nullopt,
      NullIfEmpty(u.lang()),
      std::string(u.is_active() ? "1" : "0"),
      NullIfEmpty(u.ed25519_private_key()),
      NullIfEmpty(u.ed25519_public_key()),
      NullIfEmpty(u.wg_pk()),
      NullIfEmpty(u.wg_pub()),
      NullIfEmpty(u.wg_psk()),
  };
  return row;
}

}  // namespace hsync::reporter
