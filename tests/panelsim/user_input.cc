#include "tests/panelsim/user_input.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "tests/panelsim/py_json.h"

namespace hsync::panelsim {
namespace {

using nlohmann::json;

constexpr char kNotNull[] = "Field may not be null.";
constexpr char kMissing[] = "Missing data for required field.";
constexpr char kNotString[] = "Not a valid string.";
constexpr char kNotNumber[] = "Not a valid number.";
constexpr char kNotInteger[] = "Not a valid integer.";
constexpr char kTooLarge[] = "Number too large.";
constexpr char kSpecialNumber[] = "Special numeric values (nan or infinity) are not permitted.";
constexpr char kNotBoolean[] = "Not a valid boolean.";
constexpr char kNotDate[] = "Not a valid date.";
constexpr char kUnknownField[] = "Unknown field.";
// The request parser (webargs) rejects malformed JSON with werkzeug's plain
// BadRequest, which the panel's catch-all error handler turns into a 500.
constexpr char kMalformedJsonText[] =
    "400 Bad Request: The browser (or proxy) sent a request that this server could not "
    "understand.";
constexpr char kModeChoices[] = "Must be one of: no_reset, monthly, weekly, daily.";
constexpr char kLangChoices[] = "Must be one of: en, fa, ru, pt, zh, my.";

using Errors = std::map<std::string, std::vector<std::string>>;

// A value that can be given as a JSON number or as a string holding one (Python float()).
std::optional<double> PythonFloatFromString(std::string text) {
  text = std::string(absl::StripAsciiWhitespace(text));
  std::string lower = absl::AsciiStrToLower(text);
  bool negative = false;
  std::string_view body = lower;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (body == "inf" || body == "infinity") {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  if (body.empty() || !(std::isdigit(static_cast<unsigned char>(body[0])) || body[0] == '.')) {
    return std::nullopt;
  }
  double value = 0;
  const auto result = std::from_chars(body.data(), body.data() + body.size(), value);
  if (result.ec == std::errc::result_out_of_range) {
    value = std::numeric_limits<double>::infinity();  // Python: float('1e999') == inf
  } else if (result.ec != std::errc() || result.ptr != body.data() + body.size()) {
    return std::nullopt;
  }
  return negative ? -value : value;
}

// Python int(str): optional sign and decimal digits, surrounding whitespace allowed.
std::optional<int64_t> PythonIntFromString(const std::string& raw, bool* too_large) {
  const absl::string_view stripped = absl::StripAsciiWhitespace(raw);
  std::string_view text(stripped.data(), stripped.size());
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  uint64_t magnitude = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), magnitude);
  if (result.ec != std::errc() ||
      magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    *too_large = true;
    return std::nullopt;
  }
  const int64_t value = static_cast<int64_t>(magnitude);
  return negative ? -value : value;
}

// marshmallow Float (allow_nan=False).
std::optional<double> ValidateFloat(const json& v, std::vector<std::string>* errors) {
  std::optional<double> value;
  if (std::optional<double> special = NonFiniteValue(v)) {
    value = *special;
  } else if (v.is_number()) {
    value = v.get<double>();
  } else if (v.is_string()) {
    value = PythonFloatFromString(v.get<std::string>());
    if (!value.has_value()) {
      errors->push_back(kNotNumber);
      return std::nullopt;
    }
  } else {
    errors->push_back(kNotNumber);
    return std::nullopt;
  }
  if (!std::isfinite(*value)) {
    errors->push_back(kSpecialNumber);
    return std::nullopt;
  }
  return value;
}

// marshmallow Integer (strict=False): int(value).
std::optional<int64_t> ValidateInteger(const json& v, std::vector<std::string>* errors) {
  if (std::optional<double> special = NonFiniteValue(v)) {
    errors->push_back(std::isnan(*special) ? kNotInteger : kTooLarge);
    return std::nullopt;
  }
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      errors->push_back(kTooLarge);
      return std::nullopt;
    }
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    const double d = std::trunc(v.get<double>());
    if (!(d >= -9.2e18 && d <= 9.2e18)) {
      errors->push_back(kTooLarge);
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  if (v.is_string()) {
    bool too_large = false;
    std::optional<int64_t> value = PythonIntFromString(v.get<std::string>(), &too_large);
    if (!value.has_value()) errors->push_back(too_large ? kTooLarge : kNotInteger);
    return value;
  }
  errors->push_back(kNotInteger);
  return std::nullopt;
}

std::optional<std::string> ValidateString(const json& v, std::vector<std::string>* errors) {
  if (v.is_string() && !NonFiniteValue(v).has_value()) return v.get<std::string>();
  errors->push_back(kNotString);
  return std::nullopt;
}

// marshmallow Boolean's truthy/falsy sets.
std::optional<bool> ValidateBoolean(const json& v, std::vector<std::string>* errors) {
  static const std::set<std::string> kTruthy = {"t", "T", "true", "True", "TRUE", "on", "On",
                                                "ON", "y", "Y", "yes", "Yes", "YES", "1"};
  static const std::set<std::string> kFalsy = {"f", "F", "false", "False", "FALSE", "off", "Off",
                                               "OFF", "n", "N", "no", "No", "NO", "0"};
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number() && !NonFiniteValue(v)) {
    const double d = v.get<double>();
    if (d == 1) return true;
    if (d == 0) return false;
  }
  if (v.is_string() && !NonFiniteValue(v)) {
    const std::string& s = v.get_ref<const std::string&>();
    if (kTruthy.count(s) > 0) return true;
    if (kFalsy.count(s) > 0) return false;
  }
  errors->push_back(kNotBoolean);
  return std::nullopt;
}

std::optional<std::string> ValidateChoice(const json& v, const std::set<std::string>& choices,
                                          const char* message, std::vector<std::string>* errors) {
  if (v.is_string() && choices.count(v.get<std::string>()) > 0) return v.get<std::string>();
  errors->push_back(message);
  return std::nullopt;
}

}  // namespace

bool IsCanonicalUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::variant<UserInput, ApiError> ParseUserBody(std::string_view body, bool json_content_type,
                                                UserBodyKind kind) {
  json doc = json::object();
  // Only an empty body reads as "no body" (json.loads(" ") fails too).
  if (json_content_type && !body.empty()) {
    absl::StatusOr<json> parsed = PyLoads(body);
    if (!parsed.ok()) return ApiError::Exception(kMalformedJsonText);
    doc = std::move(*parsed);
  }
  if (!doc.is_object()) {
    return ApiError::Abort(
        422, "Validation error",
        json{{"json", json{{"_schema", json::array({"Invalid input type."})}}}});
  }

  static const std::set<std::string> kModes = {"no_reset", "monthly", "weekly", "daily"};
  static const std::set<std::string> kLangs = {"en", "fa", "ru", "pt", "zh", "my"};

  UserInput in;
  Errors errors;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    std::vector<std::string>& field_errors = errors[key];
    if (key == "uuid" || key == "added_by_uuid") {
      // The panel's uuid field: anything but a canonical uuid silently becomes None.
      std::optional<std::string> uuid;
      if (v.is_string() && IsCanonicalUuid(v.get<std::string>())) uuid = v.get<std::string>();
      (key == "uuid" ? in.uuid : in.added_by_uuid) = uuid;
    } else if (key == "name") {
      if (v.is_null()) {
        if (kind == UserBodyKind::kCreate) field_errors.push_back(kNotNull);
      } else {
        in.name = ValidateString(v, &field_errors);
      }
    } else if (v.is_null()) {
      if (key == "start_date") in.start_date_given = true;
      if (key == "enable" || key == "is_active" || key == "id") {
        field_errors.push_back(kNotNull);  // the schema's fields without allow_none
      } else if (key != "usage_limit_GB" && key != "current_usage_GB" && key != "package_days" &&
                 key != "mode" && key != "last_online" && key != "start_date" &&
                 key != "last_reset_time" && key != "comment" && key != "telegram_id" &&
                 key != "ed25519_private_key" && key != "ed25519_public_key" && key != "wg_pk" &&
                 key != "wg_pub" && key != "wg_psk" && key != "lang") {
        field_errors.push_back(kUnknownField);
      }
    } else if (key == "usage_limit_GB") {
      in.usage_limit_gb = ValidateFloat(v, &field_errors);
    } else if (key == "current_usage_GB") {
      in.current_usage_gb = ValidateFloat(v, &field_errors);
    } else if (key == "package_days") {
      in.package_days = ValidateInteger(v, &field_errors);
    } else if (key == "telegram_id") {
      in.telegram_id = ValidateInteger(v, &field_errors);
    } else if (key == "mode") {
      in.mode = ValidateChoice(v, kModes, kModeChoices, &field_errors);
    } else if (key == "lang") {
      in.lang = ValidateChoice(v, kLangs, kLangChoices, &field_errors);
    } else if (key == "last_online") {
      in.last_online = v.is_string() && !NonFiniteValue(v) ? v.get<std::string>() : PyDumps(v);
      in.last_online_valid = v.is_string() && ParsePanelDateTime(*in.last_online).ok();
    } else if (key == "start_date") {
      in.start_date_given = true;
      if (v.is_string() && !NonFiniteValue(v)) {
        absl::StatusOr<absl::CivilDay> day = ParsePanelDate(v.get<std::string>());
        if (day.ok()) in.start_date = *day;
      }
      if (!in.start_date.has_value()) field_errors.push_back(kNotDate);
    } else if (key == "comment") {
      in.comment = ValidateString(v, &field_errors);
    } else if (key == "ed25519_private_key") {
      in.ed25519_private_key = ValidateString(v, &field_errors);
    } else if (key == "ed25519_public_key") {
      in.ed25519_public_key = ValidateString(v, &field_errors);
    } else if (key == "wg_pk") {
      in.wg_pk = ValidateString(v, &field_errors);
    } else if (key == "wg_pub") {
      in.wg_pub = ValidateString(v, &field_errors);
    } else if (key == "wg_psk") {
      in.wg_psk = ValidateString(v, &field_errors);
    } else if (key == "enable") {
      in.enable = ValidateBoolean(v, &field_errors);
    } else if (key == "is_active") {
      ValidateBoolean(v, &field_errors);  // validated, then ignored
    } else if (key == "id") {
      ValidateInteger(v, &field_errors);  // validated, then ignored
    } else if (key == "last_reset_time") {
      // ignored
    } else {
      field_errors.push_back(kUnknownField);
    }
  }
  if (kind == UserBodyKind::kCreate && !doc.contains("name")) errors["name"].push_back(kMissing);

  json detail = json::object();
  for (const auto& [field, messages] : errors) {
    if (!messages.empty()) detail[field] = messages;
  }
  if (!detail.empty()) return ApiError::Abort(422, "Validation error", json{{"json", detail}});
  return in;
}

}  // namespace hsync::panelsim
