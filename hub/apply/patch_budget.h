// How many PATCHes the applier may send to the parent panel (api mode). Every
// PATCH makes the single-threaded panel re-apply the user in its proxy cores
// (PANEL.md §1: ~30 ms at 1,000 users, 76 ms at 10,000), so the hub spends a
// fixed number per minute. Promises: in ANY 60 s window at most
// `per_minute` writes are taken, and in any 10 s window at most
// ceil(per_minute / 6) (so a minute's budget is not spent in one burst that
// stalls the panel's admin UI and subscription pages, and an urgent user
// never waits a whole minute for the window to slide). per_minute = 0 means
// unlimited (TryTake always succeeds, and still counts). Not thread-safe (the applier's cycle).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/time/time.h"

namespace hsync::hub {

class PatchBudget {
 public:
  explicit PatchBudget(uint32_t per_minute);

  // Takes one write at `now` when both windows allow it; false = wait.
  // (`now` going backwards between calls only makes it stricter.)
  bool TryTake(absl::Time now);
  // Writes the budget would allow at `now` (SIZE_MAX when unlimited).
  size_t Available(absl::Time now);
  // Writes taken in the 60 s before `now`.
  size_t TakenLastMinute(absl::Time now);
  uint32_t per_minute() const { return per_minute_; }
  bool unlimited() const { return per_minute_ == 0; }

 private:
  void Expire(absl::Time now);

  uint32_t per_minute_;
  uint32_t per_slice_;        // ceil(per_minute / 6)
  std::deque<absl::Time> taken_;  // times of the writes of the last minute, oldest first
};

}  // namespace hsync::hub
