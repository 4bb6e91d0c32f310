// Validation of POST/PATCH bodies for admin/user, as the panel's schema does
// it (PANEL.md §1 "Writing"): unknown fields and bad values -> 422 with
// detail.json.<field> messages; null means "leave unchanged" for every field
// but enable, is_active and id (422 "Field may not be null."), and POST's
// name; malformed JSON -> 500 (werkzeug's BadRequest text).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/time/civil_time.h"
#include "tests/panelsim/api_error.h"

namespace hsync::panelsim {

// A validated body. An empty optional = absent or null = unchanged.
struct UserInput {
  std::optional<std::string> uuid;  // only a lower-case canonical uuid survives validation
  std::optional<std::string> name;
  std::optional<double> usage_limit_gb;
  std::optional<double> current_usage_gb;
  std::optional<int64_t> package_days;
  bool start_date_given = false;  // key present (a null clears it, with package_days)
  std::optional<absl::CivilDay> start_date;
  std::optional<std::string> mode;
  // last_online as given (a non-string as its JSON text). Only the exact form
  // "YYYY-MM-DD HH:MM:SS" is valid; anything else fails like the panel's
  // database write (500, nothing changed).
  std::optional<std::string> last_online;
  bool last_online_valid = false;
  std::optional<std::string> comment;
  std::optional<std::string> added_by_uuid;
  std::optional<int64_t> telegram_id;
  std::optional<std::string> ed25519_private_key;
  std::optional<std::string> ed25519_public_key;
  std::optional<std::string> wg_pk;
  std::optional<std::string> wg_pub;
  std::optional<std::string> wg_psk;
  std::optional<std::string> lang;
  std::optional<bool> enable;
};

enum class UserBodyKind { kCreate, kPatch };

// Parses and validates `body`. A body without a JSON Content-Type is read as
// {} (as the panel's request parser does). Returns the input or the error to answer.
std::variant<UserInput, ApiError> ParseUserBody(std::string_view body, bool json_content_type,
                                                UserBodyKind kind);

// True for a lower-case canonical uuid (8-4-4-4-12 hex).
bool IsCanonicalUuid(std::string_view text);

}  // namespace hsync::panelsim
