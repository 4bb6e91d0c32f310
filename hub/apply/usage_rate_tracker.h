// Each user's recent byte rate, learnt from the journal's pending totals as
// the applier sees them every cycle: bytes that arrived between two looks
// (pending now - (pending before - applied since)) over the time between.
// The rate is an exponentially weighted average with `time_constant`, so a
// burst counts for about that long; a user with no new bytes decays toward 0
// and is forgotten after 10 time constants. Not thread-safe (the applier's
// cycle).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/time/time.h"
#include "hub/journal/journal.h"

namespace hsync::hub {

class UsageRateTracker {
 public:
  explicit UsageRateTracker(absl::Duration time_constant = absl::Seconds(60));

  // One look at every user's pending bytes at `now` (the journal's list).
  void Observe(const std::vector<PendingUser>& pending, absl::Time now);
  // `bytes` of the user were applied to the parent (left the pending total).
  void NoteApplied(const std::string& uuid, uint64_t bytes);
  // Recent bytes per second of the user; 0 when unknown.
  double BytesPerSecond(const std::string& uuid) const;
  size_t tracked_users() const { return users_.size(); }

 private:
  struct Entry {
    uint64_t last_pending = 0;
    uint64_t applied_since = 0;
    double rate = 0;  // bytes per second
    absl::Time last_seen;
    absl::Time last_arrival;
  };
  absl::Duration time_constant_;
  std::unordered_map<std::string, Entry> users_;
};

}  // namespace hsync::hub
