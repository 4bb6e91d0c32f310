#include "hub/roster/list_pacer.h"

#include <algorithm>

namespace hsync::hub {

ListPacer::ListPacer(ListPacing pacing) : pacing_(pacing) {}

void ListPacer::Record(absl::Duration took) {
  // Beyond what already gives max_interval a read counts no more (a stuck
  // panel must not keep the interval at its cap for many reads after).
  if (pacing_.max_share > 0) took = std::min(took, pacing_.max_interval * pacing_.max_share);
  if (took >= estimate_) {
    estimate_ = took;
  } else {
    estimate_ = (estimate_ + took) / 2;
  }
}

absl::Duration ListPacer::Interval() const {
  absl::Duration wanted = pacing_.poll_interval;
  if (pacing_.max_share > 0) wanted = std::max(wanted, estimate_ / pacing_.max_share);
  return std::min(wanted, std::max(pacing_.max_interval, pacing_.poll_interval));
}

}  // namespace hsync::hub
