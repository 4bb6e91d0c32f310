#include "hub/apply/usage_rate_tracker.h"

#include <cmath>
#include <unordered_set>

namespace hsync::hub {

UsageRateTracker::UsageRateTracker(absl::Duration time_constant)
    : time_constant_(time_constant) {}

void UsageRateTracker::DecayTo(Entry& e, absl::Time t) const {
  const double dt = absl::ToDoubleSeconds(t - e.last_seen);
  if (dt <= 0) return;
  e.rate *= std::exp(-dt / absl::ToDoubleSeconds(time_constant_));
  e.last_seen = t;
}

bool UsageRateTracker::Forgotten(const Entry& e, absl::Time now) const {
  return e.last_pending == 0 && now - e.last_arrival > time_constant_ * 10;
}

void UsageRateTracker::Look(const PendingUser& p, absl::Time now) {
  const double tau = absl::ToDoubleSeconds(time_constant_);
  auto found = users_.find(p.uuid);
  // Forgotten at an earlier look (everyone-looks erase it then).
  if (found != users_.end() && Forgotten(found->second, last_look_)) {
    users_.erase(found);
    found = users_.end();
  }
  if (found == users_.end()) {
    // First look: the bytes gathered since the oldest of them arrived.
    Entry& e = users_[p.uuid];
    const double age = std::max(1.0, absl::ToDoubleSeconds(now - p.first_pending_at));
    e.rate = static_cast<double>(p.bytes) / std::max(age, tau);
    e.last_pending = p.bytes;
    e.last_seen = now;
    e.last_arrival = now;
    return;
  }
  Entry& e = found->second;
  // The looks since last_seen found no change: no bytes arrived then.
  if (last_look_ < now) DecayTo(e, last_look_);
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

void UsageRateTracker::Gone(const std::string& uuid, absl::Time now) {
  auto it = users_.find(uuid);
  if (it == users_.end()) return;
  Entry& e = it->second;
  DecayTo(e, now);
  e.last_pending = 0;
  e.applied_since = 0;
  if (Forgotten(e, now)) users_.erase(it);
}

void UsageRateTracker::ObserveChanged(const std::vector<PendingUser>& changed, absl::Time now) {
  for (const PendingUser& p : changed) {
    if (p.bytes > 0) {
      Look(p, now);
    } else {
      Gone(p.uuid, now);
    }
  }
  last_look_ = now;
}

void UsageRateTracker::Observe(const std::vector<PendingUser>& pending, absl::Time now) {
  std::unordered_set<std::string> seen;
  seen.reserve(pending.size());
  for (const PendingUser& p : pending) {
    seen.insert(p.uuid);
    Look(p, now);
  }
  // Users with nothing pending: no bytes arrived; decay, then forget.
  for (auto it = users_.begin(); it != users_.end();) {
    if (seen.count(it->first) > 0) {
      ++it;
      continue;
    }
    Entry& e = it->second;
    DecayTo(e, now);
    e.last_pending = 0;
    e.applied_since = 0;
    it = Forgotten(e, now) ? users_.erase(it) : std::next(it);
  }
  last_look_ = now;
}

void UsageRateTracker::Prune() {
  for (auto it = users_.begin(); it != users_.end();) {
    it = Forgotten(it->second, last_look_) ? users_.erase(it) : std::next(it);
  }
}

void UsageRateTracker::NoteApplied(const std::string& uuid, uint64_t bytes) {
  auto it = users_.find(uuid);
  if (it != users_.end()) it->second.applied_since += bytes;
}

double UsageRateTracker::BytesPerSecond(const std::string& uuid) const {
  auto it = users_.find(uuid);
  if (it == users_.end()) return 0.0;
  Entry e = it->second;
  if (Forgotten(e, last_look_)) return 0.0;
  DecayTo(e, last_look_);
  return e.rate;
}

}  // namespace hsync::hub
