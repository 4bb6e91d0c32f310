// Panel date/time text formats: strict parsing and formatting.
#include "common/panel_time.h"

#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace hsync {
namespace {

TEST(PanelTimeTest, FormatsDatesAndDateTimes) {
  EXPECT_EQ(FormatPanelDate(absl::CivilDay(2024, 2, 29)), "2024-02-29");
  EXPECT_EQ(FormatPanelDate(absl::CivilDay(1, 1, 1)), "0001-01-01");
  EXPECT_EQ(FormatPanelDateTime(absl::CivilSecond(2024, 1, 5, 7, 8, 9)), "2024-01-05 07:08:09");
  EXPECT_EQ(FormatPanelDateTime(absl::CivilSecond(1, 1, 1, 0, 0, 0)), kNeverOnline);
}

TEST(PanelTimeTest, ParsesValidDates) {
  EXPECT_EQ(ParsePanelDate("2024-02-29").value(), absl::CivilDay(2024, 2, 29));
  EXPECT_EQ(ParsePanelDate("1999-12-31").value(), absl::CivilDay(1999, 12, 31));
  EXPECT_EQ(ParsePanelDate("0001-01-01").value(), absl::CivilDay(1, 1, 1));
}

TEST(PanelTimeTest, RejectsInvalidDates) {
  for (const char* bad : {"2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "2024-01-00",
                          "2024-1-01", "2024/01/01", "24-01-01", "2024-01-01 ", " 2024-01-01",
                          "2024-01-01T00:00:00Z", "2024-01-01 00:00:00", "", "abcd-ef-gh",
                          "0000-01-01", "+024-01-01"}) {
    auto r = ParsePanelDate(bad);
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(PanelTimeTest, ParsesValidDateTimes) {
  EXPECT_EQ(ParsePanelDateTime("2024-01-05 07:08:09").value(),
            absl::CivilSecond(2024, 1, 5, 7, 8, 9));
  EXPECT_EQ(ParsePanelDateTime("2024-12-31 23:59:59").value(),
            absl::CivilSecond(2024, 12, 31, 23, 59, 59));
  const auto never = ParsePanelDateTime(kNeverOnline);
  ASSERT_TRUE(never.ok()) << never.status();
  EXPECT_EQ(never->year(), 1);
  EXPECT_EQ(FormatPanelDateTime(*never), kNeverOnline);
}

TEST(PanelTimeTest, RejectsInvalidDateTimes) {
  for (const char* bad :
       {"2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00+00:00",
        "2024-01-01 24:00:00", "2024-01-01 23:60:00", "2024-01-01 23:59:60", "2024-02-30 00:00:00",
        "2024-01-01 0:00:00", "2024-01-01", "2024-01-01 00:00:00.000", "2024-01-01  00:00:00",
        ""}) {
    EXPECT_FALSE(ParsePanelDateTime(bad).ok()) << "accepted \"" << bad << "\"";
  }
}

TEST(PanelTimeTest, TodayIsInTheLocalZone) {
  EXPECT_EQ(PanelToday(), absl::ToCivilDay(absl::Now(), absl::LocalTimeZone()));
  EXPECT_EQ(PanelTimeZone().name(), absl::LocalTimeZone().name());
}

}  // namespace
}  // namespace hsync
