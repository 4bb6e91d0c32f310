// Which users' pending bytes the applier PATCHes in this cycle (PATCHes are
// expensive for the panel: each one re-applies its proxy configuration).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/journal/journal.h"

namespace hsync::hub {

struct ApplySchedule {
  absl::Duration max_apply_delay;  // bytes older than this are due
  uint64_t urgent_margin_bytes = 0;
  size_t max_users = 0;            // per cycle; 0 = no limit
};

// True when the user's pending bytes take it to its quota or within
// `margin` of it, by the roster's view of the user (its last known usage and
// limit): current + pending >= limit - margin.
bool IsUrgent(const PendingUser& pending, const hiddify_sync::v1::User& roster_view,
              uint64_t margin);

struct DueUser {
  PendingUser pending;
  bool urgent = false;
};

// The users to apply now, urgent ones first, then the oldest. A user is due
// when urgent (roster view known) or when its oldest bytes waited at least
// max_apply_delay (always, also when the roster does not know the user).
// `skip` excludes users (backoff, unresolved intent); `lookup` may be empty.
std::vector<DueUser> SelectDueUsers(
    const std::vector<PendingUser>& pending, absl::Time now, const ApplySchedule& schedule,
    const std::function<std::optional<hiddify_sync::v1::User>(const std::string&)>& lookup,
    const std::function<bool(const std::string&)>& skip);

}  // namespace hsync::hub
