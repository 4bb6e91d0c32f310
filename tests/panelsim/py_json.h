// JSON as the Hiddify panel (Python/Flask) writes and reads it.
//
// Writing: compact separators, keys sorted, non-ASCII escaped as \uXXXX
// (ensure_ascii), floats printed like Python's repr() ("1000.0", "1e-05").
// Reading: like Python's json.loads, which also accepts the bare tokens
// NaN, Infinity and -Infinity; those come back as marker strings that
// NonFiniteValue() recognises, so validators can reject them as the panel does.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace hsync::panelsim {

// Appends `text` (UTF-8) as a JSON string literal, Python ensure_ascii style.
void AppendPyString(std::string* out, std::string_view text);

// Serialises `value` Python-style (objects have sorted keys because
// nlohmann::json keeps them in a std::map). Floats use FormatPythonFloat.
std::string PyDumps(const nlohmann::json& value);
void AppendPyJson(std::string* out, const nlohmann::json& value);

// Parses `text` like json.loads. Errors on malformed JSON.
absl::StatusOr<nlohmann::json> PyLoads(std::string_view text);

// If `value` is the marker of a NaN/Infinity/-Infinity token, returns the double.
std::optional<double> NonFiniteValue(const nlohmann::json& value);

}  // namespace hsync::panelsim
