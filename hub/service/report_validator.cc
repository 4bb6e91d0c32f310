#include "hub/service/report_validator.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace hsync::hub {
namespace {

// Usage field context for messages: "usages[12] (uuid 0f...)".
std::string Where(int index, const std::string& uuid) {
  return absl::StrCat("usages[", index, "] (uuid \"", uuid.size() > 64 ? uuid.substr(0, 64) + "..." : uuid,
                      "\")");
}

}  // namespace

bool IsCanonicalUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

absl::Status ValidateReport(const hiddify_sync::v1::UsageReport& report, absl::Time now) {
  if (report.node_id().empty()) return absl::InvalidArgumentError("node_id is empty");
  if (report.stream_id() == 0) return absl::InvalidArgumentError("stream_id must not be 0");
  if (report.seq() == 0) return absl::InvalidArgumentError("seq must be >= 1");
  if (static_cast<size_t>(report.usages_size()) > kMaxUsagesPerReport) {
    return absl::InvalidArgumentError(absl::StrCat("too many usages: ", report.usages_size(),
                                                   " (at most ", kMaxUsagesPerReport,
                                                   " per report; split it)"));
  }
  const absl::Time earliest = absl::FromCivil(absl::CivilSecond(2000, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  const absl::Time latest = now + kMaxClockSkew;
  absl::flat_hash_map<absl::string_view, int> seen;
  seen.reserve(report.usages_size());
  for (int i = 0; i < report.usages_size(); ++i) {
    const hiddify_sync::v1::UserUsage& usage = report.usages(i);
    if (!IsCanonicalUuid(usage.uuid())) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(i, usage.uuid()), ": uuid must be a lower-case canonical uuid"));
    }
    auto [it, inserted] = seen.emplace(usage.uuid(), i);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(Where(i, usage.uuid()),
                                                     ": duplicate uuid (also at usages[",
                                                     it->second, "])"));
    }
    if (usage.bytes() > kMaxBytesPerDelta) {
      return absl::InvalidArgumentError(absl::StrCat(Where(i, usage.uuid()), ": bytes ",
                                                     usage.bytes(), " exceed 1 PiB per delta"));
    }
    // An unset or all-zero last_online means "unknown".
    const google::protobuf::Timestamp& ts = usage.last_online();
    if (usage.has_last_online() && (ts.seconds() != 0 || ts.nanos() != 0)) {
      if (ts.nanos() < 0 || ts.nanos() > 999'999'999) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(i, usage.uuid()), ": last_online has invalid nanos"));
      }
      const absl::Time t = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
      if (t < earliest || t > latest) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(i, usage.uuid()), ": last_online ", absl::FormatTime(t, absl::UTCTimeZone()),
            " is not plausible (before 2000 or more than 24h in the future)"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace hsync::hub
