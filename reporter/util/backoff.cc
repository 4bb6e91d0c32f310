#include "reporter/util/backoff.h"

#include <algorithm>

namespace hsync::reporter {

Backoff::Backoff(absl::Duration initial, absl::Duration max)
    : initial_(initial), max_(std::max(initial, max)), rng_(std::random_device{}()) {}

absl::Duration Backoff::Next() {
  absl::Duration ceiling = initial_;
  for (int i = 0; i < failures_ && ceiling < max_; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max_);
  ++failures_;
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return ceiling * jitter(rng_);
}

}  // namespace hsync::reporter
