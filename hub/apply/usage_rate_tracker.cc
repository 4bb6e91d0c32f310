#include "hub/apply/usage_rate_tracker.h"

#include <cmath>
#include <unordered_set>

namespace hsync::hub {

UsageRateTracker::UsageRateTracker(absl::Duration time_constant)
    : time_constant_(time_constant) {}

void UsageRateTracker::Observe(const std::vector<PendingUser>& pending, absl::Time now) {
  const double tau = absl::ToDoubleSeconds(time_constant_);
  std::unordered_set<std::string> seen;
  seen.reserve(pending.size());
  for (const PendingUser& p : pending) {
    seen.insert(p.uuid);
    auto [it, inserted] = users_.try_emplace(p.uuid);
    Entry& e = it->second;
    if (inserted) {
      // First look: the bytes gathered since the oldest of them arrived.
      const double age = std::max(1.0, absl::ToDoubleSeconds(now - p.first_pending_at));
      e.rate = static_cast<double>(p.bytes) / std::max(age, tau);
      e.last_pending = p.bytes;
      e.last_seen = now;
      e.last_arrival = now;
      continue;
    }
    const uint64_t remaining = e.last_pending > e.applied_since ? e.last_pending - e.applied_since : 0;
    const uint64_t arrived = p.bytes > remaining ? p.bytes - remaining : 0;
    const double dt = absl::ToDoubleSeconds(now - e.last_seen);
    if (dt > 0) {
      const double alpha = 1.0 - std::exp(-dt / tau);
      e.rate += alpha * (static_cast<double>(arrived) / dt - e.rate);
      e.last_seen = now;
    }
    if (arrived > 0) e.last_arrival = now;
    e.last_pending = p.bytes;
    e.applied_since = 0;
  }
  // Users with nothing pending: no bytes arrived; decay, then forget.
  for (auto it = users_.begin(); it != users_.end();) {
    Entry& e = it->second;
    if (seen.count(it->first) == 0) {
      const double dt = absl::ToDoubleSeconds(now - e.last_seen);
      if (dt > 0) {
        e.rate *= std::exp(-dt / tau);
        e.last_seen = now;
      }
      e.last_pending = 0;
      e.applied_since = 0;
      if (now - e.last_arrival > time_constant_ * 10) {
        it = users_.erase(it);
        continue;
      }
    }
    ++it;
  }
}

void UsageRateTracker::NoteApplied(const std::string& uuid, uint64_t bytes) {
  auto it = users_.find(uuid);
  if (it != users_.end()) it->second.applied_since += bytes;
}

double UsageRateTracker::BytesPerSecond(const std::string& uuid) const {
  auto it = users_.find(uuid);
  return it == users_.end() ? 0.0 : it->second.rate;
}

}  // namespace hsync::hub
