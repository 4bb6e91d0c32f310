// Exponential backoff with full jitter, for reconnects and retries.
// Not thread-safe; one instance per retry loop.
#pragma once

#include <random>

#include "absl/time/time.h"

namespace hsync::reporter {

class Backoff {
 public:
  // Delays start near `initial`, double per failure, never exceed `max`.
  Backoff(absl::Duration initial, absl::Duration max);

  // The delay before the next attempt: a random value in [ceiling/2, ceiling],
  // where ceiling = min(initial * 2^failures, max). Counts one failure.
  absl::Duration Next();
  // Call after a success: the next failure starts again from `initial`.
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace hsync::reporter
