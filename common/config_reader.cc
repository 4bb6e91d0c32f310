#include "common/config_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"

namespace hsync {
namespace {

// Debian's abseil is built with its own absl::string_view (not std::string_view).
inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

const char* TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// Follows a dotted key ("parent.tls.ca_file") through nested tables.
const toml::node* Find(const toml::table& root, std::string_view key) {
  const toml::table* table = &root;
  const toml::node* node = nullptr;
  for (absl::string_view part : absl::StrSplit(Av(key), '.')) {
    if (table == nullptr) return nullptr;
    node = table->get(Sv(part));
    if (node == nullptr) return nullptr;
    table = node->as_table();
  }
  return node;
}

// Walks `table` (whose dotted path is `prefix`) and appends the keys nobody read.
// A sub-table that nothing under it was read from is reported once, as a whole.
void CollectUnknown(const toml::table& table, const std::string& prefix,
                    const std::set<std::string, std::less<>>& read_keys,
                    std::vector<std::string>* unknown) {
  for (auto&& [name, node] : table) {
    const std::string path =
        prefix.empty() ? std::string(name.str()) : absl::StrCat(prefix, ".", Av(name.str()));
    const bool read = read_keys.count(path) > 0;
    if (const toml::table* sub = node.as_table()) {
      const std::string child_prefix = path + ".";
      auto it = read_keys.lower_bound(child_prefix);
      const bool child_read = it != read_keys.end() && it->rfind(child_prefix, 0) == 0;
      if (read || child_read) {
        CollectUnknown(*sub, path, read_keys, unknown);
      } else {
        unknown->push_back(path);
      }
    } else if (!read) {
      unknown->push_back(path);
    }
  }
}

// Parses one "<digits><unit>" run list; units ms, s, m, h.
absl::StatusOr<absl::Duration> ParseUnits(std::string_view text) {
  absl::Duration total = absl::ZeroDuration();
  size_t pos = 0;
  while (pos < text.size()) {
    int64_t number = 0;
    const size_t digits_begin = pos;
    while (pos < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[pos]))) {
      if (number > (std::numeric_limits<int64_t>::max() - 9) / 10) {
        return absl::InvalidArgumentError("number too large");
      }
      number = number * 10 + (text[pos] - '0');
      ++pos;
    }
    if (pos == digits_begin) return absl::InvalidArgumentError("expected a number");
    const size_t unit_begin = pos;
    while (pos < text.size() && absl::ascii_isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    const std::string_view unit = text.substr(unit_begin, pos - unit_begin);
    if (unit == "ms") {
      total += absl::Milliseconds(number);
    } else if (unit == "s") {
      total += absl::Seconds(number);
    } else if (unit == "m") {
      total += absl::Minutes(number);
    } else if (unit == "h") {
      total += absl::Hours(number);
    } else {
      return absl::InvalidArgumentError(
          unit.empty() ? std::string("missing unit") : absl::StrCat("unknown unit \"", Av(unit), "\""));
    }
  }
  if (total == absl::InfiniteDuration()) return absl::InvalidArgumentError("number too large");
  return total;
}

std::string RangeText(absl::Duration min, absl::Duration max) {
  return absl::StrCat("must be between ", absl::FormatDuration(min), " and ",
                      absl::FormatDuration(max));
}

}  // namespace

ConfigReader::ConfigReader(std::unique_ptr<toml::table> table, std::string source_name)
    : table_(std::move(table)), source_name_(std::move(source_name)) {}
ConfigReader::ConfigReader(ConfigReader&&) noexcept = default;
ConfigReader& ConfigReader::operator=(ConfigReader&&) noexcept = default;
ConfigReader::~ConfigReader() = default;

absl::StatusOr<ConfigReader> ConfigReader::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string message = absl::StrCat("cannot open config file ", path, ": ",
                                             std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::FailedPreconditionError(message);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read config file ", path));
  }
  return LoadString(text.str(), path);
}

absl::StatusOr<ConfigReader> ConfigReader::LoadString(std::string_view text,
                                                      std::string source_name) {
  try {
    auto table = std::make_unique<toml::table>(toml::parse(text, source_name));
    return ConfigReader(std::move(table), std::move(source_name));
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ":", e.source().begin.line, ":", e.source().begin.column,
        ": TOML syntax error: ", Av(e.description())));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": cannot parse: ", e.what()));
  }
}

bool ConfigReader::Has(std::string_view key) const { return Find(*table_, key) != nullptr; }

std::string ConfigReader::GetString(std::string_view key, std::string default_value) {
  std::optional<std::string> value = GetOptionalString(key);
  return value.has_value() ? *std::move(value) : std::move(default_value);
}

std::optional<std::string> ConfigReader::GetOptionalString(std::string_view key) {
  read_keys_.emplace(key);
  const toml::node* node = Find(*table_, key);
  if (node == nullptr) return std::nullopt;
  if (const auto* s = node->as_string()) return s->get();
  AddError(key, absl::StrCat("must be a string, not ", TypeName(*node)));
  return std::nullopt;
}

std::string ConfigReader::RequireString(std::string_view key) {
  if (!Has(key)) {
    read_keys_.emplace(key);
    AddError(key, "required");
    return "";
  }
  return GetString(key, "");
}

int64_t ConfigReader::GetInt(std::string_view key, int64_t default_value, int64_t min,
                             int64_t max) {
  read_keys_.emplace(key);
  const toml::node* node = Find(*table_, key);
  if (node == nullptr) return default_value;
  const auto* integer = node->as_integer();
  if (integer == nullptr) {
    AddError(key, absl::StrCat("must be an integer, not ", TypeName(*node)));
    return default_value;
  }
  const int64_t value = integer->get();
  if (value < min || value > max) {
    AddError(key, absl::StrCat("must be between ", min, " and ", max, ", got ", value));
    return default_value;
  }
  return value;
}

double ConfigReader::GetDouble(std::string_view key, double default_value, double min,
                               double max) {
  read_keys_.emplace(key);
  const toml::node* node = Find(*table_, key);
  if (node == nullptr) return default_value;
  double value;
  if (const auto* f = node->as_floating_point()) {
    value = f->get();
  } else if (const auto* i = node->as_integer()) {
    value = static_cast<double>(i->get());
  } else {
    AddError(key, absl::StrCat("must be a number, not ", TypeName(*node)));
    return default_value;
  }
  if (!std::isfinite(value) || value < min || value > max) {
    AddError(key, absl::StrCat("must be between ", min, " and ", max, ", got ", value));
    return default_value;
  }
  return value;
}

bool ConfigReader::GetBool(std::string_view key, bool default_value) {
  read_keys_.emplace(key);
  const toml::node* node = Find(*table_, key);
  if (node == nullptr) return default_value;
  if (const auto* b = node->as_boolean()) return b->get();
  AddError(key, absl::StrCat("must be true or false, not ", TypeName(*node)));
  return default_value;
}

absl::Duration ConfigReader::GetDuration(std::string_view key, absl::Duration default_value,
                                         absl::Duration min, absl::Duration max) {
  read_keys_.emplace(key);
  const toml::node* node = Find(*table_, key);
  if (node == nullptr) return default_value;
  absl::Duration value;
  if (const auto* i = node->as_integer()) {
    if (i->get() < 0) {
      AddError(key, RangeText(min, max));
      return default_value;
    }
    value = absl::Seconds(i->get());
  } else if (const auto* s = node->as_string()) {
    absl::StatusOr<absl::Duration> parsed = ParseConfigDuration(s->get());
    if (!parsed.ok()) {
      AddError(key, Sv(parsed.status().message()));
      return default_value;
    }
    value = *parsed;
  } else {
    AddError(key, absl::StrCat("must be a duration (\"30s\", \"5m\", or seconds), not ",
                               TypeName(*node)));
    return default_value;
  }
  if (value < min || value > max) {
    AddError(key, absl::StrCat(RangeText(min, max), ", got ", absl::FormatDuration(value)));
    return default_value;
  }
  return value;
}

std::string ConfigReader::GetEnum(std::string_view key, std::string default_value,
                                  const std::vector<std::string>& allowed) {
  if (!Has(key)) {
    read_keys_.emplace(key);
    return default_value;
  }
  std::string value = GetString(key, default_value);
  for (const std::string& candidate : allowed) {
    if (candidate == value) return value;
  }
  if (Find(*table_, key)->is_string()) {
    AddError(key, absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "), ", got \"",
                               value, "\""));
  }
  return default_value;
}

std::vector<std::string> ConfigReader::GetStringArray(std::string_view key) {
  read_keys_.emplace(key);
  const toml::node* node = Find(*table_, key);
  if (node == nullptr) return {};
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    AddError(key, absl::StrCat("must be an array of strings, not ", TypeName(*node)));
    return {};
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < array->size(); ++i) {
    const auto* s = (*array)[i].as_string();
    if (s == nullptr) {
      AddError(key, absl::StrCat("element ", i, " must be a string, not ", TypeName((*array)[i])));
      return {};
    }
    out.push_back(s->get());
  }
  return out;
}

std::vector<std::string> ConfigReader::TableKeys(std::string_view key) {
  read_keys_.emplace(key);  // the table itself is known; its children are checked one by one
  const toml::node* node = Find(*table_, key);
  if (node == nullptr) return {};
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    AddError(key, absl::StrCat("must be a table, not ", TypeName(*node)));
    return {};
  }
  std::vector<std::string> out;
  for (auto&& [name, child] : *table) out.emplace_back(name.str());
  return out;
}

void ConfigReader::AddError(std::string_view key, std::string_view reason) {
  errors_.push_back(absl::StrCat(Av(key), ": ", Av(reason)));
}

absl::Status ConfigReader::Finish() const {
  std::vector<std::string> problems;
  for (const std::string& error : errors_) problems.push_back(absl::StrCat(source_name_, ": ", error));
  std::vector<std::string> unknown;
  CollectUnknown(*table_, "", read_keys_, &unknown);
  for (const std::string& key : unknown) {
    problems.push_back(absl::StrCat(source_name_, ": ", key, ": unknown key"));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string message =
        absl::StrCat("cannot open secret file ", path, ": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::FailedPreconditionError(message);
  }
  struct stat info;
  if (::stat(path.c_str(), &info) == 0 && (info.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    LogWarning(absl::StrCat("secret file ", path,
                            " is readable by group or others; restrict it with chmod 600"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::FailedPreconditionError(absl::StrCat("cannot read secret file ", path));
  std::string secret(absl::StripAsciiWhitespace(text.str()));
  if (secret.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("secret file ", path, " is empty"));
  }
  return secret;
}

absl::StatusOr<absl::Duration> ParseConfigDuration(std::string_view text) {
  const std::string_view trimmed = Sv(absl::StripAsciiWhitespace(Av(text)));
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid duration \"", Av(text), "\" (", Av(why),
                                                   "; use e.g. 500ms, 30s, 5m, 1h, 1m30s)"));
  };
  if (trimmed.empty()) return invalid("empty");
  bool all_digits = true;
  for (char c : trimmed) all_digits = all_digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
  if (all_digits) {
    absl::StatusOr<absl::Duration> seconds = ParseUnits(absl::StrCat(Av(trimmed), "s"));
    if (!seconds.ok()) return invalid(Sv(seconds.status().message()));
    return *seconds;
  }
  absl::StatusOr<absl::Duration> parsed = ParseUnits(trimmed);
  if (!parsed.ok()) return invalid(Sv(parsed.status().message()));
  return *parsed;
}

}  // namespace hsync
