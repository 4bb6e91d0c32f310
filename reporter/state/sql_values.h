// Reading typed values out of a text ResultSet row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"

namespace hsync::reporter {

using SqlCell = std::optional<std::string>;

// NULL, empty or unparsable -> `fallback`; negative -> 0.
inline uint64_t CellU64(const SqlCell& cell, uint64_t fallback = 0) {
  if (!cell.has_value() || cell->empty()) return fallback;
  if (cell->front() == '-') return 0;
  uint64_t v = 0;
  return absl::SimpleAtoi(*cell, &v) ? v : fallback;
}

inline int64_t CellI64(const SqlCell& cell, int64_t fallback = 0) {
  int64_t v = 0;
  return cell.has_value() && absl::SimpleAtoi(*cell, &v) ? v : fallback;
}

inline std::string CellStr(const SqlCell& cell) { return cell.value_or(std::string()); }

}  // namespace hsync::reporter
