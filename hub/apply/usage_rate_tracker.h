// Each user's recent byte rate, learnt from the journal's pending totals as
// the applier sees them every cycle: bytes that arrived between two looks
// (pending now - (pending before - applied since)) over the time between.
// The rate is an exponentially weighted average with `time_constant`, so a
// burst counts for about that long; a user with no new bytes decays toward 0
// and is forgotten after 10 time constants without pending bytes. A look may
// name only the users whose pending total changed (ObserveChanged): the
// others had no bytes arrive, and their decay is applied when they are next
// read or changed, giving the same figures as a look at everyone every
// cycle. Not thread-safe (the applier's cycle).
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
  // One look at `now` naming only the users whose pending total changed since
  // the previous look (bytes 0 = nothing pending now); everyone else is
  // taken as unchanged.
  void ObserveChanged(const std::vector<PendingUser>& changed, absl::Time now);
  // Drops the users forgotten since (after ObserveChanged, users that left
  // stay until they come back or this is called).
  void Prune();
  // `bytes` of the user were applied to the parent (left the pending total).
  void NoteApplied(const std::string& uuid, uint64_t bytes);
  // Recent bytes per second of the user as of the last look; 0 when unknown.
  double BytesPerSecond(const std::string& uuid) const;
  size_t tracked_users() const { return users_.size(); }

 private:
  struct Entry {
    uint64_t last_pending = 0;
    uint64_t applied_since = 0;
    double rate = 0;  // bytes per second, as of last_seen
    absl::Time last_seen;
    absl::Time last_arrival;
  };
  void Look(const PendingUser& p, absl::Time now);
  void Gone(const std::string& uuid, absl::Time now);
  bool Forgotten(const Entry& e, absl::Time now) const;
  // Lets the rate decay to `t` (no bytes arrived until then).
  void DecayTo(Entry& e, absl::Time t) const;

  absl::Duration time_constant_;
  absl::Time last_look_ = absl::InfinitePast();
  std::unordered_map<std::string, Entry> users_;
};

}  // namespace hsync::hub
