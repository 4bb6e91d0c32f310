#include "tests/panelsim/py_json.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/units.h"

namespace hsync::panelsim {
namespace {

// Strings that cannot come from a JSON document's own text (they start with NUL).
constexpr std::string_view kNanMarker = std::string_view("\0pyjson:NaN", 11);
constexpr std::string_view kInfMarker = std::string_view("\0pyjson:Infinity", 16);
constexpr std::string_view kNegInfMarker = std::string_view("\0pyjson:-Infinity", 17);

void AppendEscapedCodePoint(std::string* out, uint32_t cp) {
  if (cp >= 0x10000) {
    cp -= 0x10000;
    absl::StrAppendFormat(out, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
  } else {
    absl::StrAppendFormat(out, "\\u%04x", cp);
  }
}

// Decodes one UTF-8 sequence at text[*i]; invalid bytes decode as themselves (Latin-1).
uint32_t NextCodePoint(std::string_view text, size_t* i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(*i);
  int extra = 0;
  uint32_t cp = c;
  if (c >= 0xF0 && c <= 0xF4) {
    extra = 3;
    cp = c & 0x07;
  } else if (c >= 0xE0) {
    extra = 2;
    cp = c & 0x0F;
  } else if (c >= 0xC2 && c <= 0xDF) {
    extra = 1;
    cp = c & 0x1F;
  } else {
    ++*i;
    return c;
  }
  if (*i + static_cast<size_t>(extra) >= text.size()) {
    ++*i;
    return c;
  }
  for (int k = 1; k <= extra; ++k) {
    const unsigned char cc = byte(*i + k);
    if ((cc & 0xC0) != 0x80) {
      ++*i;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  *i += static_cast<size_t>(extra) + 1;
  return cp;
}

// Bytes a JSON string may carry as they are (printable ASCII except '"' and '\\').
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> table{};
  for (int ch = 0x20; ch < 0x7F; ++ch) table[ch] = ch != '"' && ch != '\\';
  return table;
}();

// Whether any of the 8 bytes at `p` needs escaping (SWAR: a byte < 0x20,
// >= 0x7F, '"' or '\\'), so plain runs are copied 8 bytes per step.
inline bool NeedsEscapeIn8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;        // some byte < 0x20
  const uint64_t high_or_del = (w | ((w & ~kHigh) + kOnes)) & kHigh;   // byte >= 0x7F
  const uint64_t quote = has_zero(w ^ (kOnes * '"'));
  const uint64_t backslash = has_zero(w ^ (kOnes * '\\'));
  return (below_space | high_or_del | quote | backslash) != 0;
}

// Replaces the bare tokens NaN, Infinity and -Infinity (outside strings) by marker strings.
std::string ReplaceNonFiniteTokens(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < text.size()) {
        out.push_back(text[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out.push_back(c);
      continue;
    }
    const auto replace = [&](std::string_view token, std::string_view marker) {
      if (text.substr(i, token.size()) != token) return false;
      out.push_back('"');
      out.append("\\u0000");
      out.append(marker.substr(1));
      out.push_back('"');
      i += token.size() - 1;
      return true;
    };
    if (replace("-Infinity", kNegInfMarker) || replace("Infinity", kInfMarker) ||
        replace("NaN", kNanMarker)) {
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      // A number too large for a double is infinity to Python (1e999).
      size_t end = i + 1;
      while (end < text.size() && std::strchr("0123456789.eE+-", text[end]) != nullptr) ++end;
      const std::string token(text.substr(i, end - i));
      const double value = std::strtod(token.c_str(), nullptr);
      if (std::isinf(value)) {
        replace(token, value < 0 ? kNegInfMarker : kInfMarker);
      } else {
        out.append(token);
        i = end - 1;
      }
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

void AppendPyString(std::string* out, std::string_view text) {
  out->push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    // Copy the longest run of characters that need no escaping in one go.
    size_t run = i;
    while (run + 8 <= text.size() && !NeedsEscapeIn8(text.data() + run)) run += 8;
    while (run < text.size() && kPlain[static_cast<unsigned char>(text[run])]) ++run;
    if (run > i) {
      out->append(text.data() + i, run - i);
      i = run;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    const uint32_t cp = NextCodePoint(text, &i);
    switch (cp) {
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default: AppendEscapedCodePoint(out, cp);
    }
  }
  out->push_back('"');
}

void AppendPyJson(std::string* out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      out->append("null");
      return;
    case nlohmann::json::value_t::boolean:
      out->append(value.get<bool>() ? "true" : "false");
      return;
    case nlohmann::json::value_t::number_integer:
      absl::StrAppend(out, value.get<int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned:
      absl::StrAppend(out, value.get<uint64_t>());
      return;
    case nlohmann::json::value_t::number_float: {
      const double d = value.get<double>();
      // Python's json.dumps writes NaN/Infinity for non-finite floats.
      if (std::isnan(d)) {
        out->append("NaN");
      } else if (std::isinf(d)) {
        out->append(d < 0 ? "-Infinity" : "Infinity");
      } else {
        out->append(FormatPythonFloat(d));
      }
      return;
    }
    case nlohmann::json::value_t::string:
      AppendPyString(out, value.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : value) {
        if (!first) out->push_back(',');
        first = false;
        AppendPyJson(out, item);
      }
      out->push_back(']');
      return;
    }
    case nlohmann::json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out->push_back(',');
        first = false;
        AppendPyString(out, it.key());
        out->push_back(':');
        AppendPyJson(out, it.value());
      }
      out->push_back('}');
      return;
    }
    default:
      out->append("null");
  }
}

std::string PyDumps(const nlohmann::json& value) {
  std::string out;
  AppendPyJson(&out, value);
  return out;
}

absl::StatusOr<nlohmann::json> PyLoads(std::string_view text) {
  const std::string prepared = ReplaceNonFiniteTokens(text);
  nlohmann::json parsed = nlohmann::json::parse(prepared, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError("malformed JSON");
  return parsed;
}

std::optional<double> NonFiniteValue(const nlohmann::json& value) {
  if (!value.is_string()) return std::nullopt;
  const std::string& s = value.get_ref<const std::string&>();
  if (s == kNanMarker) return std::numeric_limits<double>::quiet_NaN();
  if (s == kInfMarker) return std::numeric_limits<double>::infinity();
  if (s == kNegInfMarker) return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

}  // namespace hsync::panelsim
