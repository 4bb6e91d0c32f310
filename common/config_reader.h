// Typed, key-by-key reading of a TOML config file. Every problem is collected
// with its dotted key ("parent.url: must start with https://") so that a daemon
// can print all of them and refuse to start. Keys present in the file but never
// read are reported as unknown (catches typos).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace hsync {

class ConfigReader {
 public:
  // Parses the file; a syntax error is returned with file, line and column.
  static absl::StatusOr<ConfigReader> LoadFile(const std::string& path);
  // Parses text; `source_name` is used in messages.
  static absl::StatusOr<ConfigReader> LoadString(std::string_view text, std::string source_name);

  ConfigReader(ConfigReader&&) noexcept;
  ConfigReader& operator=(ConfigReader&&) noexcept;
  ~ConfigReader();

  bool Has(std::string_view key) const;
  // Value or default; wrong type -> error recorded, default returned.
  std::string GetString(std::string_view key, std::string default_value);
  std::optional<std::string> GetOptionalString(std::string_view key);
  // Absent -> error "required" recorded, "" returned.
  std::string RequireString(std::string_view key);
  // Out of [min, max] -> error recorded naming the range.
  int64_t GetInt(std::string_view key, int64_t default_value, int64_t min, int64_t max);
  double GetDouble(std::string_view key, double default_value, double min, double max);
  bool GetBool(std::string_view key, bool default_value);
  // Accepts an integer (seconds) or a string with units: "500ms", "30s", "5m", "1h", "1m30s".
  absl::Duration GetDuration(std::string_view key, absl::Duration default_value,
                             absl::Duration min, absl::Duration max);
  // One of `allowed`, else error listing them.
  std::string GetEnum(std::string_view key, std::string default_value,
                      const std::vector<std::string>& allowed);
  std::vector<std::string> GetStringArray(std::string_view key);
  // Keys of the sub-table at `key` (e.g. "nodes"); each child key "nodes.<k>" is
  // marked as read only when the caller reads it.
  std::vector<std::string> TableKeys(std::string_view key);

  // Records a problem found by the caller's own validation.
  void AddError(std::string_view key, std::string_view reason);
  // OK, or InvalidArgument listing every problem ("<source>: <key>: <reason>"
  // joined by "; "), unknown keys included.
  absl::Status Finish() const;
  const std::string& source_name() const { return source_name_; }

 private:
  ConfigReader(std::unique_ptr<toml::table> table, std::string source_name);

  std::unique_ptr<toml::table> table_;
  std::string source_name_;
  std::set<std::string, std::less<>> read_keys_;
  std::vector<std::string> errors_;
};

// Reads a secret (token, API key, password) from a file, trimming surrounding
// white space. Errors name the path, never the content. Empty file -> error.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// Parses "500ms", "30s", "5m", "1h", "1m30s", or a plain integer of seconds.
absl::StatusOr<absl::Duration> ParseConfigDuration(std::string_view text);

}  // namespace hsync
