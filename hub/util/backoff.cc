#include "hub/util/backoff.h"

#include <algorithm>

namespace hsync::hub {

absl::Duration Backoff::NextDelay() const {
  absl::Duration delay = initial_;
  for (uint32_t i = 0; i < failures_ && delay < max_; ++i) delay *= 2;
  return std::min(delay, max_);
}

absl::Time Backoff::RecordFailure(absl::Time now) {
  const absl::Duration delay = NextDelay();
  ++failures_;
  next_attempt_at_ = now + delay;
  return next_attempt_at_;
}

void Backoff::Reset() {
  failures_ = 0;
  next_attempt_at_ = absl::InfinitePast();
}

}  // namespace hsync::hub
