// Exponential backoff: after the n-th consecutive failure the next attempt
// waits initial * 2^(n-1), capped at max. No jitter: one hub talks to one
// parent, there is no herd to spread.
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace hsync::hub {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}

  // Records a failure at `now`; returns the earliest time of the next attempt.
  absl::Time RecordFailure(absl::Time now);
  // Back to no delay.
  void Reset();
  // True when no failure is pending or its delay has passed.
  bool Ready(absl::Time now) const { return now >= next_attempt_at_; }

  uint32_t failures() const { return failures_; }
  absl::Time next_attempt_at() const { return next_attempt_at_; }
  // The delay that the next RecordFailure() would impose.
  absl::Duration NextDelay() const;

 private:
  absl::Duration initial_;
  absl::Duration max_;
  uint32_t failures_ = 0;
  absl::Time next_attempt_at_ = absl::InfinitePast();
};

}  // namespace hsync::hub
