// Conversions between exact byte counts and the panel's GiB floats (PANEL.md §1).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace hsync {

inline constexpr uint64_t kBytesPerGiB = uint64_t{1} << 30;
// The panel clamps stored byte values to 10^6 GiB.
inline constexpr uint64_t kPanelMaxBytes = uint64_t{1'000'000} * kBytesPerGiB;

// `bytes / 2^30` printed as Python's repr() of a float prints it: the shortest
// digits that parse back to the same double, always looking like a float
// ("1000.0", "0.0009765625", "9.313225746154785e-10", "1e+16").
// For every bytes <= kPanelMaxBytes, ParsePanelGiB(BytesToPanelGiB(b)) == b.
std::string BytesToPanelGiB(uint64_t bytes);

// Formats any double the way Python's repr() does (used for GiB values).
std::string FormatPythonFloat(double value);

// What the panel stores for a GiB value: min(gib * 2^30, cap) rounded to the
// nearest integer. Errors on NaN, infinity and negative values (we never
// accept a negative byte count from anyone).
absl::StatusOr<uint64_t> PanelGiBToBytes(double gib);

}  // namespace hsync
