// Small helpers shared by the hub data-path tests and the journal benchmark.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::hub::testing {

// A canonical lower-case v4-looking uuid, distinct for every n.
inline std::string TestUuid(uint64_t n, uint32_t prefix = 0) {
  return absl::StrFormat("%08x-0000-4000-8000-%012x", prefix, n);
}

struct Delta {
  std::string uuid;
  uint64_t bytes = 0;
  absl::Time last_online = absl::InfinitePast();
};

inline hiddify_sync::v1::UsageReport MakeReport(const std::string& node, uint64_t stream,
                                                uint64_t seq, const std::vector<Delta>& deltas) {
  hiddify_sync::v1::UsageReport report;
  report.set_node_id(node);
  report.set_stream_id(stream);
  report.set_seq(seq);
  for (const Delta& d : deltas) {
    auto* u = report.add_usages();
    u->set_uuid(d.uuid);
    u->set_bytes(d.bytes);
    if (d.last_online != absl::InfinitePast()) {
      *u->mutable_last_online() = ToProtoTimestamp(d.last_online);
    }
  }
  *report.mutable_collected_at() = ToProtoTimestamp(absl::Now());
  return report;
}

}  // namespace hsync::hub::testing
