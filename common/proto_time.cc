#include "common/proto_time.h"

#include <cstdint>

namespace hsync {
namespace {

// google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

}  // namespace

google::protobuf::Timestamp ToProtoTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  if (t == absl::InfinitePast()) return ts;  // unset
  if (t == absl::InfiniteFuture()) {
    ts.set_seconds(kMaxTimestampSeconds);
    ts.set_nanos(999'999'999);
    return ts;
  }
  int64_t seconds = absl::ToUnixSeconds(t);  // floors
  int64_t nanos = (t - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1);
  if (seconds < kMinTimestampSeconds) {
    seconds = kMinTimestampSeconds;
    nanos = 0;
  } else if (seconds > kMaxTimestampSeconds) {
    seconds = kMaxTimestampSeconds;
    nanos = 999'999'999;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(nanos));
  return ts;
}

absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return absl::InfinitePast();
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace hsync
