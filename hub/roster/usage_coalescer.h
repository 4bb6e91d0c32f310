// Holds the roster users whose only change is usage (current_usage_bytes,
// last_online) until the next coalesced flush, so that a busy user reaches
// children at most once per `interval` instead of at every PATCH. Pending
// users go out together: a flush takes all of them, and flushes are at least
// `interval` apart (the first change after a quiet spell waits one interval).
// The check for a due flush is O(1); a flush is O(pending users). Not
// thread-safe (the RosterStore calls it under its lock).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace hsync::hub {

class UsageCoalescer {
 public:
  explicit UsageCoalescer(absl::Duration interval) : interval_(interval) {}

  // Records `record` (the user's encoded roster record) as the user's latest
  // usage-only state, replacing any earlier pending one.
  void Put(const std::string& uuid, std::string record, absl::Time now);
  // Forgets a pending user (it was published with everything else, or removed).
  void Erase(const std::string& uuid);
  // The pending record of `uuid`, or nullptr.
  const std::string* Find(const std::string& uuid) const;

  // True when pending users exist and the flush time has come.
  bool Due(absl::Time now) const { return !pending_.empty() && now >= next_flush_at_; }
  // Every pending (uuid, record), emptying the coalescer; the next flush is
  // then due no earlier than `now + interval`.
  std::vector<std::pair<std::string, std::string>> TakeAll(absl::Time now);

  size_t size() const { return pending_.size(); }
  absl::Duration interval() const { return interval_; }

 private:
  const absl::Duration interval_;
  absl::flat_hash_map<std::string, std::string> pending_;
  absl::Time next_flush_at_ = absl::InfinitePast();
  absl::Time last_flush_at_ = absl::InfinitePast();
};

}  // namespace hsync::hub
