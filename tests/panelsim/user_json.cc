#include "tests/panelsim/user_json.h"

#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "common/units.h"
#include "tests/panelsim/py_json.h"
#include "tests/panelsim/user_activity.h"

namespace hsync::panelsim {
namespace {

void AppendOptionalString(std::string* out, const std::optional<std::string>& value) {
  if (value.has_value()) {
    AppendPyString(out, *value);
  } else {
    out->append("null");
  }
}

}  // namespace

std::string BytesAsPanelGiB(int64_t bytes) {
  if (bytes >= 0) return BytesToPanelGiB(static_cast<uint64_t>(bytes));
  // Dividing by a power of two is exact, so this equals Python's int / int.
  return FormatPythonFloat(static_cast<double>(bytes) / static_cast<double>(kBytesPerGiB));
}

void AppendUserJson(std::string* out, const UserRecord& u, absl::CivilDay today) {
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
  out->append(IsActive(u, today) ? "true" : "false");
  out->append(",\"lang\":");
  AppendPyString(out, u.lang.value_or(kPanelDefaultLang));
  out->append(",\"last_online\":");
  AppendPyString(out, u.last_online);
  out->append(",\"last_reset_time\":");
  if (u.last_reset_time.has_value()) {
    absl::StrAppend(out, "\"", FormatPanelDate(*u.last_reset_time), " 00:00:00\"");
  } else {
    out->append("null");
  }
  out->append(",\"mode\":");
  AppendOptionalString(out, u.mode);
  out->append(",\"name\":");
  AppendPyString(out, u.name);
  absl::StrAppend(out, ",\"package_days\":", u.package_days);
  out->append(",\"start_date\":");
  if (u.start_date.has_value()) {
    absl::StrAppend(out, "\"", FormatPanelDate(*u.start_date), "\"");
  } else {
    out->append("null");
  }
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

std::string UserJson(const UserRecord& user, absl::CivilDay today) {
  std::string out;
  out.reserve(1024);
  AppendUserJson(&out, user, today);
  return out;
}

std::string UserListJson(const std::vector<UserRecord>& users, absl::CivilDay today) {
  std::string out;
  out.reserve(users.size() * 1200 + 2);
  out.push_back('[');
  for (size_t i = 0; i < users.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendUserJson(&out, users[i], today);
  }
  out.push_back(']');
  return out;
}

}  // namespace hsync::panelsim
