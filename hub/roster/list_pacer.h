// How long the roster poller waits between two reads of the parent's user
// list. The list is one of the panel's most expensive calls (PANEL.md §1:
// 5.3 s for 10,000 users, served while nothing else is), so the poller keeps
// the panel's time on it under `max_share` of the wall clock: after a read
// that took T the next one comes after max(poll_interval, T / max_share),
// capped at `max_interval`. A slow read raises the interval at once; faster
// reads bring it back down by halves (the estimate of T moves half-way to
// each new measurement when it is lower), so one quick answer does not undo
// the back-off; a read longer than max_interval x max_share counts as that
// long, so one stuck read does not hold the cap for many reads after. Not
// thread-safe (the poller's thread).
#pragma once

#include "absl/time/time.h"

namespace hsync::hub {

struct ListPacing {
  absl::Duration poll_interval = absl::Seconds(30);  // the configured interval: the minimum
  double max_share = 0.1;                            // of the wall clock spent on the list
  absl::Duration max_interval = absl::Minutes(30);
};

class ListPacer {
 public:
  explicit ListPacer(ListPacing pacing);

  // A read (good or failed) took `took`.
  void Record(absl::Duration took);
  // The wait before the next read.
  absl::Duration Interval() const;
  // The estimate of one read's duration the interval is based on.
  absl::Duration estimate() const { return estimate_; }
  const ListPacing& pacing() const { return pacing_; }

 private:
  ListPacing pacing_;
  absl::Duration estimate_ = absl::ZeroDuration();
};

}  // namespace hsync::hub
