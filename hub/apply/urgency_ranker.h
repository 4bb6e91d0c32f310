// How urgent one user's pending bytes are: the estimated time until the
// user reaches its quota on the parent, from the roster's view of the user
// (limit and usage the parent last showed), the bytes pending for it, and its
// recent byte rate (hub/apply/usage_rate_tracker.h). A user that the pending
// bytes already take to its quota (or within `margin` of it) has 0 left; one
// whose rate takes it there within `horizon` is urgent too. The parent cuts a
// user only once it holds the bytes, so urgent users are applied first, the
// closest to their quota first.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/journal/journal.h"

namespace hsync::hub {

struct UserUrgency {
  bool urgent = false;
  // Estimated time to the quota (minus margin) after the pending bytes;
  // InfiniteDuration when the roster does not know the user or it has no rate.
  absl::Duration time_to_quota = absl::InfiniteDuration();
};

struct UrgencyRule {
  uint64_t margin_bytes = 0;                          // this close to the quota = there
  absl::Duration horizon = absl::ZeroDuration();      // projected crossing within this = urgent
};

// `roster_view` nullopt = unknown to the roster: never urgent.
UserUrgency RankUrgency(const PendingUser& pending,
                        const std::optional<hiddify_sync::v1::User>& roster_view,
                        double bytes_per_second, const UrgencyRule& rule);

}  // namespace hsync::hub
