#include "tests/panelsim/user_json.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "common/units.h"
#include "tests/panelsim/py_json.h"
#include "tests/panelsim/user_activity.h"
#include "tests/panelsim/user_store.h"

namespace hsync::panelsim {
namespace {

void AppendOptionalString(std::string* out, const std::optional<std::string_view>& value) {
  if (value.has_value()) {
    AppendPyString(out, *value);
  } else {
    out->append("null");
  }
}

std::optional<std::string_view> ViewOf(const std::optional<std::string>& s) {
  if (!s.has_value()) return std::nullopt;
  return std::string_view(*s);
}

bool ParseInt(const std::optional<std::string_view>& text, int64_t* out) {
  return text.has_value() && absl::SimpleAtoi(absl::string_view(text->data(), text->size()), out);
}

}  // namespace

std::string BytesAsPanelGiB(int64_t bytes) {
  if (bytes >= 0) return BytesToPanelGiB(static_cast<uint64_t>(bytes));
  // Dividing by a power of two is exact, so this equals Python's int / int.
  return FormatPythonFloat(static_cast<double>(bytes) / static_cast<double>(kBytesPerGiB));
}

void AppendUserJson(std::string* out, const UserJsonView& u) {
  // Keys in Python's sorted order (code points: upper case before lower case).
  out->append("{\"added_by_uuid\":");
  AppendOptionalString(out, u.added_by_uuid);
  out->append(",\"comment\":");
  AppendOptionalString(out, u.comment);
  out->append(",\"current_usage_GB\":");
  out->append(BytesAsPanelGiB(u.current_usage));
  out->append(",\"ed25519_private_key\":");
  AppendOptionalString(out, u.ed25519_private_key);
  out->append(",\"ed25519_public_key\":");
  AppendOptionalString(out, u.ed25519_public_key);
  out->append(",\"enable\":");
  out->append(u.enable ? "true" : "false");
  absl::StrAppend(out, ",\"id\":", u.id);
  out->append(",\"is_active\":");
  out->append(u.is_active ? "true" : "false");
  out->append(",\"lang\":");
  AppendPyString(out, u.lang.value_or(kPanelDefaultLang));
  out->append(",\"last_online\":");
  AppendPyString(out, u.last_online);
  out->append(",\"last_reset_time\":");
  if (u.last_reset_time.has_value()) {
    out->push_back('"');
    out->append(*u.last_reset_time);
    out->append(" 00:00:00\"");
  } else {
    out->append("null");
  }
  out->append(",\"mode\":");
  AppendOptionalString(out, u.mode);
  out->append(",\"name\":");
  AppendPyString(out, u.name);
  absl::StrAppend(out, ",\"package_days\":", u.package_days);
  out->append(",\"start_date\":");
  AppendOptionalString(out, u.start_date);
  out->append(",\"telegram_id\":");
  if (u.telegram_id.has_value()) {
    absl::StrAppend(out, *u.telegram_id);
  } else {
    out->append("null");
  }
  out->append(",\"usage_limit_GB\":");
  out->append(BytesAsPanelGiB(u.usage_limit));
  out->append(",\"uuid\":");
  AppendPyString(out, u.uuid);
  out->append(",\"wg_pk\":");
  AppendOptionalString(out, u.wg_pk);
  out->append(",\"wg_psk\":");
  AppendOptionalString(out, u.wg_psk);
  out->append(",\"wg_pub\":");
  AppendOptionalString(out, u.wg_pub);
  out->push_back('}');
}

std::string UserJson(const UserRecord& u, absl::CivilDay today) {
  const std::optional<std::string> start =
      u.start_date.has_value() ? std::optional<std::string>(FormatPanelDate(*u.start_date))
                               : std::nullopt;
  const std::optional<std::string> reset =
      u.last_reset_time.has_value()
          ? std::optional<std::string>(FormatPanelDate(*u.last_reset_time))
          : std::nullopt;
  UserJsonView v;
  v.id = u.id;
  v.uuid = u.uuid;
  v.name = u.name;
  v.last_online = u.last_online;
  v.usage_limit = u.usage_limit;
  v.current_usage = u.current_usage;
  v.package_days = u.package_days;
  v.mode = ViewOf(u.mode);
  v.start_date = ViewOf(start);
  v.last_reset_time = ViewOf(reset);
  v.comment = ViewOf(u.comment);
  v.lang = ViewOf(u.lang);
  v.added_by_uuid = ViewOf(u.added_by_uuid);
  v.ed25519_private_key = ViewOf(u.ed25519_private_key);
  v.ed25519_public_key = ViewOf(u.ed25519_public_key);
  v.wg_pk = ViewOf(u.wg_pk);
  v.wg_pub = ViewOf(u.wg_pub);
  v.wg_psk = ViewOf(u.wg_psk);
  v.telegram_id = u.telegram_id;
  v.enable = u.enable;
  v.is_active = IsActive(u, today);
  std::string out;
  out.reserve(1024);
  AppendUserJson(&out, v);
  return out;
}

bool AppendUserJsonFromRow(std::string* out, const RowCells& row, absl::CivilDay today) {
  using C = UserStore::Column;
  if (row.size() < C::kColumnCount) return false;
  UserJsonView v;
  if (!ParseInt(row[C::kId], &v.id) || !ParseInt(row[C::kUsageLimit], &v.usage_limit) ||
      !ParseInt(row[C::kCurrentUsage], &v.current_usage) ||
      !ParseInt(row[C::kPackageDays], &v.package_days)) {
    return false;
  }
  v.uuid = row[C::kUuid].value_or("");
  v.name = row[C::kName].value_or("");
  v.last_online = row[C::kLastOnline].value_or(kNeverOnline);
  v.mode = row[C::kMode];
  v.start_date = row[C::kStartDate];
  v.last_reset_time = row[C::kLastResetTime];
  v.comment = row[C::kComment];
  v.lang = row[C::kLang];
  v.added_by_uuid = row[C::kAddedByUuid];
  v.ed25519_private_key = row[C::kEdPriv];
  v.ed25519_public_key = row[C::kEdPub];
  v.wg_pk = row[C::kWgPk];
  v.wg_pub = row[C::kWgPub];
  v.wg_psk = row[C::kWgPsk];
  int64_t telegram = 0;
  if (ParseInt(row[C::kTelegramId], &telegram)) v.telegram_id = telegram;
  v.enable = row[C::kEnable].has_value() && *row[C::kEnable] != "0";
  std::optional<absl::CivilDay> start;
  if (v.start_date.has_value()) {
    absl::StatusOr<absl::CivilDay> day = ParsePanelDate(*v.start_date);
    if (day.ok()) start = *day;
  }
  v.is_active = IsActive(v.enable, v.usage_limit, v.current_usage, v.package_days, start, today);
  AppendUserJson(out, v);
  return true;
}

}  // namespace hsync::panelsim
