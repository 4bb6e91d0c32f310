// absl::Time <-> google.protobuf.Timestamp.
#include "common/proto_time.h"

#include <gtest/gtest.h>

namespace hsync {
namespace {

TEST(ProtoTimeTest, RoundTripsWithNanoseconds) {
  const absl::Time t = absl::FromUnixSeconds(1'700'000'000) + absl::Nanoseconds(123'456'789);
  const google::protobuf::Timestamp ts = ToProtoTimestamp(t);
  EXPECT_EQ(ts.seconds(), 1'700'000'000);
  EXPECT_EQ(ts.nanos(), 123'456'789);
  EXPECT_EQ(FromProtoTimestamp(ts), t);
}

TEST(ProtoTimeTest, TimesBeforeTheEpochHaveNonNegativeNanos) {
  const absl::Time t = absl::FromUnixSeconds(-10) + absl::Milliseconds(250);
  const google::protobuf::Timestamp ts = ToProtoTimestamp(t);
  EXPECT_EQ(ts.seconds(), -10);
  EXPECT_EQ(ts.nanos(), 250'000'000);
  EXPECT_EQ(FromProtoTimestamp(ts), t);
}

TEST(ProtoTimeTest, UnsetTimestampIsInfinitePast) {
  EXPECT_EQ(FromProtoTimestamp(google::protobuf::Timestamp()), absl::InfinitePast());
  const google::protobuf::Timestamp ts = ToProtoTimestamp(absl::InfinitePast());
  EXPECT_EQ(ts.seconds(), 0);
  EXPECT_EQ(ts.nanos(), 0);
}

TEST(ProtoTimeTest, InfiniteFutureMapsToTheLargestTimestamp) {
  const google::protobuf::Timestamp ts = ToProtoTimestamp(absl::InfiniteFuture());
  EXPECT_EQ(ts.seconds(), 253402300799);
}

}  // namespace
}  // namespace hsync
