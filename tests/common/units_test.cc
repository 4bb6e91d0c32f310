// Bytes <-> panel GiB floats: Python repr formatting and exact round trips.
#include "common/units.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace hsync {
namespace {

// What the panel does with the text we send: parse it as a double, then
// min(value * 2^30, cap) rounded.
uint64_t PanelStores(const std::string& text) {
  const double gib = std::strtod(text.c_str(), nullptr);
  auto bytes = PanelGiBToBytes(gib);
  EXPECT_TRUE(bytes.ok()) << text << ": " << bytes.status();
  return bytes.value_or(0);
}

TEST(UnitsTest, ExactRoundTripForNamedValues) {
  const uint64_t values[] = {0,
                             1,
                             uint64_t{1} << 20,
                             uint64_t{5} << 30,
                             123456789,
                             1'000'000'000'000'000,
                             kPanelMaxBytes - 1,
                             kPanelMaxBytes};
  for (uint64_t bytes : values) {
    EXPECT_EQ(PanelStores(BytesToPanelGiB(bytes)), bytes) << BytesToPanelGiB(bytes);
  }
}

TEST(UnitsTest, ExactRoundTripForRandomSample) {
  std::mt19937_64 random(20240601);
  std::uniform_int_distribution<uint64_t> anywhere(0, kPanelMaxBytes);
  std::uniform_int_distribution<uint64_t> small(0, uint64_t{1} << 32);
  int failures = 0;
  for (int i = 0; i < 100'000; ++i) {
    // Half spread over the whole range, half small values (the common case).
    const uint64_t bytes = (i % 2 == 0) ? anywhere(random) : small(random);
    const std::string text = BytesToPanelGiB(bytes);
    if (PanelStores(text) != bytes && ++failures <= 10) {
      ADD_FAILURE() << bytes << " -> " << text << " -> " << PanelStores(text);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(UnitsTest, FormatsLikePythonRepr) {
  EXPECT_EQ(BytesToPanelGiB(0), "0.0");
  EXPECT_EQ(BytesToPanelGiB(1), "9.313225746154785e-10");
  EXPECT_EQ(BytesToPanelGiB(uint64_t{1} << 20), "0.0009765625");
  EXPECT_EQ(BytesToPanelGiB(uint64_t{5} << 30), "5.0");
  EXPECT_EQ(BytesToPanelGiB(uint64_t{1000} << 30), "1000.0");
  EXPECT_EQ(BytesToPanelGiB(kPanelMaxBytes), "1000000.0");
  EXPECT_EQ(BytesToPanelGiB(123456789), "0.11497809458523989");

  EXPECT_EQ(FormatPythonFloat(1e-05), "1e-05");
  EXPECT_EQ(FormatPythonFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatPythonFloat(0.00012345), "0.00012345");
  EXPECT_EQ(FormatPythonFloat(1.5e-07), "1.5e-07");
  EXPECT_EQ(FormatPythonFloat(1e16), "1e+16");
  EXPECT_EQ(FormatPythonFloat(1.5e16), "1.5e+16");
  EXPECT_EQ(FormatPythonFloat(1e15), "1000000000000000.0");
  EXPECT_EQ(FormatPythonFloat(9999999999999998.0), "9999999999999998.0");
  EXPECT_EQ(FormatPythonFloat(1e100), "1e+100");
  EXPECT_EQ(FormatPythonFloat(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(FormatPythonFloat(5e-324), "5e-324");
  EXPECT_EQ(FormatPythonFloat(0.1), "0.1");
  EXPECT_EQ(FormatPythonFloat(123.456), "123.456");
  EXPECT_EQ(FormatPythonFloat(-2.5), "-2.5");
  EXPECT_EQ(FormatPythonFloat(-0.0), "-0.0");
  EXPECT_EQ(FormatPythonFloat(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(FormatPythonFloat(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(FormatPythonFloat(-std::numeric_limits<double>::infinity()), "-inf");
}

TEST(UnitsTest, FormattedValuesAlwaysLookLikeFloats) {
  for (uint64_t gib : {uint64_t{1}, uint64_t{10}, uint64_t{999'999}}) {
    const std::string text = BytesToPanelGiB(gib << 30);
    EXPECT_TRUE(text.find('.') != std::string::npos || text.find('e') != std::string::npos)
        << text;
  }
}

TEST(UnitsTest, GiBToBytesRoundsToNearest) {
  EXPECT_EQ(PanelGiBToBytes(0.0).value(), 0u);
  EXPECT_EQ(PanelGiBToBytes(1.0).value(), kBytesPerGiB);
  EXPECT_EQ(PanelGiBToBytes(0.5).value(), kBytesPerGiB / 2);
  // 1.4 and 1.6 bytes' worth of GiB round to 1 and 2 bytes.
  EXPECT_EQ(PanelGiBToBytes(1.4 / static_cast<double>(kBytesPerGiB)).value(), 1u);
  EXPECT_EQ(PanelGiBToBytes(1.6 / static_cast<double>(kBytesPerGiB)).value(), 2u);
}

TEST(UnitsTest, GiBToBytesClampsAtThePanelCap) {
  EXPECT_EQ(PanelGiBToBytes(1'000'000.0).value(), kPanelMaxBytes);
  EXPECT_EQ(PanelGiBToBytes(1'000'000.5).value(), kPanelMaxBytes);
  EXPECT_EQ(PanelGiBToBytes(1e300).value(), kPanelMaxBytes);
  EXPECT_EQ(PanelGiBToBytes(std::numeric_limits<double>::max()).value(), kPanelMaxBytes);
  EXPECT_EQ(PanelGiBToBytes(999'999.0).value(), uint64_t{999'999} << 30);
}

TEST(UnitsTest, GiBToBytesRejectsNegativeNaNAndInfinity) {
  for (double bad : {-1.0, -1e-300, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    auto r = PanelGiBToBytes(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace hsync
