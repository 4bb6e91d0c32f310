// absl::Time <-> google.protobuf.Timestamp.
#pragma once

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace hsync {

google::protobuf::Timestamp ToProtoTimestamp(absl::Time t);
// An unset (all-zero) Timestamp maps to absl::InfinitePast().
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& ts);

}  // namespace hsync
