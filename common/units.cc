#include "common/units.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hsync {
namespace {

// Python's repr() switches to scientific notation when the decimal exponent
// of the shortest digits is below -4 or at least 16.
constexpr int kMinFixedExponent = -4;
constexpr int kMaxFixedExponent = 15;

// Shortest round-trip digits of a finite, positive `value` and its decimal
// exponent: value == 0.d1d2d3... * 10^(exponent + 1) == d1.d2d3... * 10^exponent.
struct ShortestDigits {
  std::string digits;
  int exponent = 0;
};

ShortestDigits ShortestOf(double value) {
  char buffer[64];
  const auto result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  const std::string_view text(buffer, static_cast<size_t>(result.ptr - buffer));
  // Form: d[.ddd]e[+-]XX
  const size_t e_pos = text.find('e');
  ShortestDigits out;
  for (char c : text.substr(0, e_pos)) {
    if (c != '.') out.digits.push_back(c);
  }
  out.exponent = std::atoi(std::string(text.substr(e_pos + 1)).c_str());
  // to_chars never emits trailing zeros in the mantissa, but be safe.
  while (out.digits.size() > 1 && out.digits.back() == '0') out.digits.pop_back();
  return out;
}

std::string Scientific(const ShortestDigits& d) {
  std::string out(1, d.digits[0]);
  if (d.digits.size() > 1) {
    out.push_back('.');
    out.append(d.digits, 1);
  }
  const int magnitude = std::abs(d.exponent);
  absl::StrAppend(&out, "e", d.exponent < 0 ? "-" : "+", magnitude < 10 ? "0" : "", magnitude);
  return out;
}

std::string Fixed(const ShortestDigits& d) {
  const int digit_count = static_cast<int>(d.digits.size());
  const int int_digits = d.exponent + 1;  // digits before the decimal point
  std::string out;
  if (int_digits <= 0) {
    out = "0.";
    out.append(static_cast<size_t>(-int_digits), '0');
    out.append(d.digits);
  } else if (int_digits >= digit_count) {
    out = d.digits;
    out.append(static_cast<size_t>(int_digits - digit_count), '0');
    out.append(".0");
  } else {
    out = d.digits.substr(0, static_cast<size_t>(int_digits));
    out.push_back('.');
    out.append(d.digits, static_cast<size_t>(int_digits));
  }
  return out;
}

}  // namespace

std::string FormatPythonFloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  const std::string sign = std::signbit(value) ? "-" : "";
  if (value == 0) return sign + "0.0";
  const ShortestDigits d = ShortestOf(std::fabs(value));
  if (d.exponent < kMinFixedExponent || d.exponent > kMaxFixedExponent) {
    return sign + Scientific(d);
  }
  return sign + Fixed(d);
}

std::string BytesToPanelGiB(uint64_t bytes) {
  return FormatPythonFloat(static_cast<double>(bytes) / static_cast<double>(kBytesPerGiB));
}

absl::StatusOr<uint64_t> PanelGiBToBytes(double gib) {
  if (std::isnan(gib) || std::isinf(gib)) {
    return absl::InvalidArgumentError(
        absl::StrCat("GiB value must be a finite number, got ", FormatPythonFloat(gib)));
  }
  if (gib < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GiB value must not be negative, got ", FormatPythonFloat(gib)));
  }
  // Multiplying by a power of two is exact (no overflow for finite doubles here).
  const double bytes = gib * static_cast<double>(kBytesPerGiB);
  if (bytes >= static_cast<double>(kPanelMaxBytes)) return kPanelMaxBytes;
  // Round half away from zero, as MariaDB does for the decimal literal the
  // panel's driver sends (a Python float printed with repr). Fits in int64.
  return static_cast<uint64_t>(std::llround(bytes));
}

}  // namespace hsync
