// Checks a UsageReport before anything is journaled. Every problem is an
// InvalidArgument that names it (field, index and uuid), so a reporter's
// operator can find the bad row.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::hub {

// Bounds of a sane report.
inline constexpr size_t kMaxUsagesPerReport = 100'000;
inline constexpr uint64_t kMaxBytesPerDelta = uint64_t{1} << 50;  // 1 PiB
// last_online may be at most this far ahead of the hub's clock (clock skew).
inline constexpr absl::Duration kMaxClockSkew = absl::Hours(24);

// True for a lower-case canonical uuid: 8-4-4-4-12 lower-case hex digits.
bool IsCanonicalUuid(std::string_view text);

// OK when: node_id non-empty, stream_id != 0, seq >= 1, at most
// kMaxUsagesPerReport usages, each uuid canonical and not repeated, each
// bytes <= kMaxBytesPerDelta, each set last_online a valid timestamp between
// 2000-01-01 and now + kMaxClockSkew (unset or all-zero = unknown, accepted).
absl::Status ValidateReport(const hiddify_sync::v1::UsageReport& report, absl::Time now);

}  // namespace hsync::hub
