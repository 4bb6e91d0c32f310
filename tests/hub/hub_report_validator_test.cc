// ReportValidator: every malformed report is InvalidArgument naming the problem.
#include "hub/service/report_validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_format.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::UsageReport;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'750'000'000);

std::string Uuid(int i) { return absl::StrFormat("00000000-0000-4000-8000-%012d", i); }

UsageReport GoodReport(int users = 3) {
  UsageReport report;
  report.set_node_id("de-1");
  report.set_stream_id(42);
  report.set_seq(1);
  for (int i = 0; i < users; ++i) {
    auto* usage = report.add_usages();
    usage->set_uuid(Uuid(i));
    usage->set_bytes(1000 + i);
  }
  return report;
}

std::string Check(const UsageReport& report) {
  absl::Status status = ValidateReport(report, kNow);
  if (status.ok()) return "OK";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

TEST(ReportValidatorTest, AcceptsAGoodReport) {
  EXPECT_EQ(Check(GoodReport()), "OK");
  EXPECT_EQ(Check(GoodReport(0)), "OK");  // an empty report is a valid heartbeat
}

TEST(ReportValidatorTest, RefusesBadHeaderFields) {
  UsageReport report = GoodReport();
  report.clear_node_id();
  EXPECT_THAT(Check(report), HasSubstr("node_id is empty"));
  report = GoodReport();
  report.set_stream_id(0);
  EXPECT_THAT(Check(report), HasSubstr("stream_id must not be 0"));
  report = GoodReport();
  report.set_seq(0);
  EXPECT_THAT(Check(report), HasSubstr("seq must be >= 1"));
}

TEST(ReportValidatorTest, CanonicalUuids) {
  EXPECT_TRUE(IsCanonicalUuid("0f3c2a1e-9b8d-4c7e-a6f5-1234567890ab"));
  EXPECT_FALSE(IsCanonicalUuid("0F3C2A1E-9B8D-4C7E-A6F5-1234567890AB"));
  EXPECT_FALSE(IsCanonicalUuid("0f3c2a1e9b8d4c7ea6f51234567890ab"));
  EXPECT_FALSE(IsCanonicalUuid("0f3c2a1e-9b8d-4c7e-a6f5-1234567890a"));
  EXPECT_FALSE(IsCanonicalUuid("0f3c2a1e-9b8d-4c7e-a6f5-1234567890ag"));
  EXPECT_FALSE(IsCanonicalUuid("{f3c2a1e-9b8d-4c7e-a6f5-1234567890a}"));
  EXPECT_FALSE(IsCanonicalUuid(""));
}

TEST(ReportValidatorTest, NamesTheIndexAndUuidOfABadUuid) {
  UsageReport report = GoodReport();
  report.mutable_usages(2)->set_uuid("NOT-A-UUID");
  EXPECT_THAT(Check(report), HasSubstr("usages[2] (uuid \"NOT-A-UUID\"): uuid must be a lower-case"));
  report.mutable_usages(2)->set_uuid("0F3C2A1E-9B8D-4C7E-A6F5-1234567890AB");
  EXPECT_THAT(Check(report), HasSubstr("usages[2]"));
}

TEST(ReportValidatorTest, RefusesADuplicateUuid) {
  UsageReport report = GoodReport();
  report.mutable_usages(2)->set_uuid(Uuid(0));
  EXPECT_THAT(Check(report), HasSubstr(absl::StrFormat(
                                 "usages[2] (uuid \"%s\"): duplicate uuid (also at usages[0])", Uuid(0))));
}

TEST(ReportValidatorTest, BytesBoundIsOnePebibyte) {
  UsageReport report = GoodReport();
  report.mutable_usages(1)->set_bytes(uint64_t{1} << 50);
  EXPECT_EQ(Check(report), "OK");
  report.mutable_usages(1)->set_bytes((uint64_t{1} << 50) + 1);
  EXPECT_THAT(Check(report), HasSubstr("usages[1]"));
  EXPECT_THAT(Check(report), HasSubstr("exceed 1 PiB"));
  report.mutable_usages(1)->set_bytes(UINT64_MAX);
  EXPECT_THAT(Check(report), HasSubstr("exceed 1 PiB"));
}

TEST(ReportValidatorTest, AtMostOneHundredThousandUsages) {
  EXPECT_EQ(Check(GoodReport(100'000)), "OK");
  EXPECT_THAT(Check(GoodReport(100'001)), HasSubstr("too many usages: 100001"));
}

TEST(ReportValidatorTest, LastOnlineMustBePlausible) {
  UsageReport report = GoodReport();
  auto* ts = report.mutable_usages(0)->mutable_last_online();
  ts->set_seconds(absl::ToUnixSeconds(kNow) - 3600);
  EXPECT_EQ(Check(report), "OK");
  ts->set_seconds(0);  // all-zero = unknown
  EXPECT_EQ(Check(report), "OK");
  ts->set_seconds(absl::ToUnixSeconds(kNow) + 2 * 86400);
  EXPECT_THAT(Check(report), HasSubstr("usages[0]"));
  EXPECT_THAT(Check(report), HasSubstr("last_online"));
  ts->set_seconds(100);  // 1970
  EXPECT_THAT(Check(report), HasSubstr("not plausible"));
  ts->set_seconds(absl::ToUnixSeconds(kNow));
  ts->set_nanos(-1);
  EXPECT_THAT(Check(report), HasSubstr("invalid nanos"));
}

}  // namespace
}  // namespace hsync::hub
