// Unit tests of panelsim's Python-compatible JSON writing and reading.
#include "tests/panelsim/py_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "absl/strings/str_format.h"

namespace hsync::panelsim {
namespace {

// Byte-by-byte reference for ASCII input: what Python's json.dumps writes.
std::string ReferenceAscii(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else if (c < 0x20 || c == 0x7F) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

TEST(PyJsonTest, EveryAsciiByteAtEveryOffsetMatchesTheReference) {
  std::mt19937 rng(1);
  for (int c = 0; c < 128; ++c) {
    for (size_t len = 1; len < 24; ++len) {
      for (size_t pos = 0; pos < len; ++pos) {
        std::string text(len, 'a');
        for (char& ch : text) ch = static_cast<char>('A' + rng() % 26);
        text[pos] = static_cast<char>(c);
        std::string out;
        AppendPyString(&out, text);
        ASSERT_EQ(out, ReferenceAscii(text)) << "byte " << c << " at " << pos << "/" << len;
      }
    }
  }
}

TEST(PyJsonTest, NonAsciiIsEscapedWithSurrogatePairs) {
  std::string out;
  AppendPyString(&out, "caf\xC3\xA9 \xF0\x9F\x98\x80 \xD8\xB3");
  EXPECT_EQ(out, "\"caf\\u00e9 \\ud83d\\ude00 \\u0633\"");
}

TEST(PyJsonTest, DumpsSortsKeysCompactlyWithPythonFloats) {
  const nlohmann::json value = {{"b", 1.0}, {"a", {1, 2.5, 1e-05}}, {"C", nullptr}, {"d", true}};
  EXPECT_EQ(PyDumps(value), R"({"C":null,"a":[1,2.5,1e-05],"b":1.0,"d":true})");
}

TEST(PyJsonTest, LoadsAcceptsNonFiniteTokensAsMarkers) {
  absl::StatusOr<nlohmann::json> v =
      PyLoads(R"({"a":NaN,"b":Infinity,"c":-Infinity,"d":1e999,"e":"NaN","f":-2.5})");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(std::isnan(*NonFiniteValue((*v)["a"])));
  EXPECT_EQ(*NonFiniteValue((*v)["b"]), INFINITY);
  EXPECT_EQ(*NonFiniteValue((*v)["c"]), -INFINITY);
  EXPECT_EQ(*NonFiniteValue((*v)["d"]), INFINITY);
  EXPECT_FALSE(NonFiniteValue((*v)["e"]).has_value());
  EXPECT_EQ((*v)["e"], "NaN");
  EXPECT_EQ((*v)["f"], -2.5);
  EXPECT_FALSE(PyLoads("{\"a\":").ok());
}

}  // namespace
}  // namespace hsync::panelsim
