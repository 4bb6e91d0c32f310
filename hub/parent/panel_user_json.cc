#include "hub/parent/panel_user_json.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "hub/parent/panel_user_list_parser.h"

namespace hsync::hub {
namespace {

using json = nlohmann::json;
using hiddify_sync::v1::User;

const char* TypeName(const json& v) { return v.type_name(); }

constexpr char kUserObjectPrefix[] = "parent user object: ";

// Reads the fields of one user object, remembering the first problem.
class UserReader {
 public:
  explicit UserReader(const json& obj) : obj_(obj) {
    auto it = obj_.find("uuid");
    if (it != obj_.end() && it->is_string()) where_ = absl::StrCat(" of user ", it->get_ref<const std::string&>());
  }

  absl::Status status() const { return status_; }
  // The field of the first problem ("" when none, or not about one field).
  const std::string& failed_field() const { return failed_field_; }

  std::string String(const char* key) { return StringOr(key, /*null_ok=*/false).value_or(""); }
  // String that may be null in the panel's database; null -> "".
  std::string NullableString(const char* key) {
    return StringOr(key, /*null_ok=*/true).value_or("");
  }
  std::optional<std::string> OptionalString(const char* key) {
    return StringOr(key, /*null_ok=*/true);
  }

  bool Bool(const char* key) {
    const json* v = Field(key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) return Fail(key, "a boolean", *v), false;
    return v->get<bool>();
  }

  std::optional<int64_t> Integer(const char* key, bool null_ok, int64_t min, int64_t max) {
    const json* v = Field(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_null() && null_ok) return std::nullopt;
    if (v->is_number_unsigned()) {
      const uint64_t u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(max)) return Fail(key, "an integer in range", *v), std::nullopt;
      return static_cast<int64_t>(u);
    }
    if (!v->is_number_integer()) return Fail(key, "an integer", *v), std::nullopt;
    const int64_t i = v->get<int64_t>();
    if (i < min || i > max) return Fail(key, "an integer in range", *v), std::nullopt;
    return i;
  }

  // A GiB number -> exact bytes.
  uint64_t GiB(const char* key) {
    const json* v = Field(key);
    if (v == nullptr) return 0;
    if (!v->is_number()) return Fail(key, "a number", *v), 0;
    auto bytes = PanelGiBToBytes(v->get<double>());
    if (!bytes.ok()) {
      SetError(key, absl::StrCat("field '", key, "'", where_, ": ", bytes.status().message()));
      return 0;
    }
    return *bytes;
  }

  void CheckDate(const char* key, const std::optional<std::string>& text) {
    if (!text.has_value() || !status_.ok()) return;
    if (!ParsePanelDate(*text).ok()) BadFormat(key, "YYYY-MM-DD", *text);
  }
  void CheckDateTime(const char* key, const std::optional<std::string>& text) {
    if (!text.has_value() || !status_.ok()) return;
    if (!ParsePanelDateTime(*text).ok()) BadFormat(key, "YYYY-MM-DD HH:MM:SS", *text);
  }

 private:
  const json* Field(const char* key) {
    if (!status_.ok()) return nullptr;
    auto it = obj_.find(key);
    if (it == obj_.end()) {
      SetError(key, absl::StrCat("field '", key, "' missing", where_));
      return nullptr;
    }
    return &*it;
  }

  std::optional<std::string> StringOr(const char* key, bool null_ok) {
    const json* v = Field(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_null() && null_ok) return std::nullopt;
    if (!v->is_string()) return Fail(key, null_ok ? "a string or null" : "a string", *v), std::nullopt;
    return v->get<std::string>();
  }

  void Fail(const char* key, const char* expected, const json& got) {
    SetError(key, absl::StrCat("field '", key, "'", where_, " must be ", expected, ", got ",
                               TypeName(got)));
  }
  void BadFormat(const char* key, const char* format, const std::string& text) {
    SetError(key, absl::StrCat("field '", key, "'", where_, " is not ", format, ": '",
                               ShortBodyForMessage(text, 40), "'"));
  }
  void SetError(const char* key, std::string message) {
    if (!status_.ok()) return;
    status_ = absl::DataLossError(absl::StrCat(kUserObjectPrefix, message));
    failed_field_ = key;
  }

  const json& obj_;
  std::string where_;
  absl::Status status_;
  std::string failed_field_;
};

// `failed_field` (may be null) gets the field that made it fail, "" when the
// problem is not one field.
absl::StatusOr<User> UserFromJson(const json& obj, std::string* failed_field = nullptr) {
  if (failed_field != nullptr) failed_field->clear();
  if (!obj.is_object()) {
    return absl::DataLossError(
        absl::StrCat("parent user object: expected a JSON object, got ", TypeName(obj)));
  }
  UserReader r(obj);
  User u;
  u.set_uuid(r.String("uuid"));
  u.set_name(r.String("name"));
  u.set_usage_limit_bytes(r.GiB("usage_limit_GB"));
  u.set_current_usage_bytes(r.GiB("current_usage_GB"));
  constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  u.set_package_days(static_cast<int32_t>(
      r.Integer("package_days", /*null_ok=*/false, kInt32Min, kInt32Max).value_or(0)));
  std::optional<std::string> start_date = r.OptionalString("start_date");
  r.CheckDate("start_date", start_date);
  if (start_date.has_value()) u.set_start_date(*start_date);
  u.set_mode(r.NullableString("mode"));
  std::optional<std::string> last_reset = r.OptionalString("last_reset_time");
  r.CheckDateTime("last_reset_time", last_reset);
  if (last_reset.has_value()) u.set_last_reset_time(*last_reset);
  std::optional<std::string> last_online = r.OptionalString("last_online");
  if (r.status().ok() && !last_online.has_value()) {
    if (failed_field != nullptr) *failed_field = "last_online";
    return absl::DataLossError(
        absl::StrCat("parent user object: field 'last_online' of user ", u.uuid(), " is null"));
  }
  r.CheckDateTime("last_online", last_online);
  u.set_last_online(last_online.value_or(""));
  u.set_enable(r.Bool("enable"));
  u.set_is_active(r.Bool("is_active"));
  u.set_comment(r.NullableString("comment"));
  std::optional<int64_t> telegram_id =
      r.Integer("telegram_id", /*null_ok=*/true, std::numeric_limits<int64_t>::min(),
                std::numeric_limits<int64_t>::max());
  if (telegram_id.has_value()) u.set_telegram_id(*telegram_id);
  u.set_lang(r.NullableString("lang"));
  // added_by_uuid is an admin's API key: checked for shape, never kept.
  (void)r.NullableString("added_by_uuid");
  u.set_ed25519_private_key(r.NullableString("ed25519_private_key"));
  u.set_ed25519_public_key(r.NullableString("ed25519_public_key"));
  u.set_wg_pk(r.NullableString("wg_pk"));
  u.set_wg_pub(r.NullableString("wg_pub"));
  u.set_wg_psk(r.NullableString("wg_psk"));
  (void)r.Integer("id", /*null_ok=*/false, 0, std::numeric_limits<int64_t>::max());
  if (!r.status().ok()) {
    if (failed_field != nullptr) *failed_field = r.failed_field();
    return r.status();
  }
  if (u.uuid().empty()) {
    if (failed_field != nullptr) *failed_field = "uuid";
    return absl::DataLossError("parent user object: empty uuid");
  }
  return u;
}

// A uuid fit to be a roster key and to be logged: 1..64 printable ASCII.
bool IsPrintableKey(const std::string& text) {
  if (text.empty() || text.size() > 64) return false;
  for (char c : text) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

absl::StatusOr<json> ParseJson(std::string_view body) {
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::DataLossError(
        absl::StrCat("parent answered a body that is not JSON: '", ShortBodyForMessage(body), "'"));
  }
  return parsed;
}

}  // namespace

absl::StatusOr<User> ParsePanelUser(std::string_view body) {
  ASSIGN_OR_RETURN(json parsed, ParseJson(body));
  return UserFromJson(parsed);
}

absl::StatusOr<ListElement> ParsePanelUserListElement(std::string_view element, size_t index) {
  ASSIGN_OR_RETURN(json parsed, ParseJson(element));
  ListElement out;
  std::string field;
  auto user = UserFromJson(parsed, &field);
  if (user.ok()) {
    out.user = *std::move(user);
    return out;
  }
  if (parsed.is_object()) {
    auto uuid = parsed.find("uuid");
    if (uuid != parsed.end() && uuid->is_string() &&
        IsPrintableKey(uuid->get_ref<const std::string&>())) {
      out.skipped.uuid = uuid->get<std::string>();
    }
  }
  out.skipped.field = std::move(field);
  absl::string_view reason = user.status().message();
  absl::ConsumePrefix(&reason, kUserObjectPrefix);
  out.skipped.reason = ShortBodyForMessage(absl::StrCat("element ", index, ": ", reason), 300);
  return out;
}

absl::Status ParsePanelUserListHead(std::string_view head) {
  // Only the head is known: a complete small value tells its type, anything
  // else is "not JSON" (the type of a cut value cannot be known).
  json parsed = json::parse(head.begin(), head.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    const std::string_view start = head.substr(0, std::min<size_t>(head.size(), 1));
    if (start == "{") {
      return absl::DataLossError("parent user list: expected a JSON array, got object");
    }
    return absl::DataLossError(
        absl::StrCat("parent answered a body that is not JSON: '", ShortBodyForMessage(head), "'"));
  }
  return absl::DataLossError(
      absl::StrCat("parent user list: expected a JSON array, got ", TypeName(parsed)));
}

absl::StatusOr<PanelUserList> ParsePanelUserList(std::string_view body) {
  PanelUserList list;
  PanelUserListParser parser([&list](User user) { list.users.push_back(std::move(user)); });
  RETURN_IF_ERROR(parser.Feed(body));
  RETURN_IF_ERROR(parser.Finish());
  list.skipped = parser.TakeSkipped();
  return list;
}

absl::StatusOr<std::string> BuildPatchBody(const UserPatch& patch) {
  std::string body = "{";
  auto add = [&body](std::string_view key, const std::string& value_text) {
    if (body.size() > 1) body += ',';
    absl::StrAppend(&body, "\"", std::string(key), "\":", value_text);
  };
  if (patch.current_usage_bytes.has_value()) {
    if (*patch.current_usage_bytes > kPanelMaxBytes) {
      return absl::InvalidArgumentError(absl::StrCat("PATCH current_usage ",
                                                     *patch.current_usage_bytes,
                                                     " bytes is above the panel's cap ",
                                                     kPanelMaxBytes));
    }
    add("current_usage_GB", BytesToPanelGiB(*patch.current_usage_bytes));
  }
  // The date texts are checked against strict digit formats, so they need no
  // JSON escaping.
  if (patch.last_online.has_value()) {
    if (!ParsePanelDateTime(*patch.last_online).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PATCH last_online must be YYYY-MM-DD HH:MM:SS, got '",
          ShortBodyForMessage(*patch.last_online, 40), "'"));
    }
    add("last_online", absl::StrCat("\"", *patch.last_online, "\""));
  }
  if (patch.package_days.has_value()) add("package_days", absl::StrCat(*patch.package_days));
  if (patch.start_date.has_value()) {
    if (!patch.package_days.has_value()) {
      return absl::InvalidArgumentError(
          "PATCH start_date needs package_days in the same body (the panel ignores it otherwise)");
    }
    if (!ParsePanelDate(*patch.start_date).ok()) {
      return absl::InvalidArgumentError(absl::StrCat("PATCH start_date must be YYYY-MM-DD, got '",
                                                     ShortBodyForMessage(*patch.start_date, 40),
                                                     "'"));
    }
    add("start_date", absl::StrCat("\"", *patch.start_date, "\""));
  }
  if (body.size() == 1) {
    return absl::InvalidArgumentError("empty PATCH (each PATCH makes the panel re-apply its config)");
  }
  body += '}';
  return body;
}

std::string ShortBodyForMessage(std::string_view body, size_t max) {
  std::string out;
  const size_t n = std::min(body.size(), max);
  out.reserve(n + 32);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(body[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (body.size() > max) absl::StrAppend(&out, "... (", body.size(), " bytes)");
  return out;
}

}  // namespace hsync::hub
