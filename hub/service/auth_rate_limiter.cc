#include "hub/service/auth_rate_limiter.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"

#include "hub/service/node_auth.h"

namespace hsync::hub {

std::string PeerAddress(std::string_view peer) {
  std::string_view rest;
  if (peer.substr(0, 5) == "ipv4:") {
    rest = peer.substr(5);
    const size_t colon = rest.rfind(':');
    return std::string(colon == std::string_view::npos ? rest : rest.substr(0, colon));
  }
  if (peer.substr(0, 5) == "ipv6:") {
    rest = peer.substr(5);
    const size_t close = rest.find(']');
    if (!rest.empty() && rest.front() == '[' && close != std::string_view::npos) {
      return std::string(rest.substr(1, close - 1));
    }
    return std::string(rest);
  }
  return std::string(peer);
}

bool AuthRateLimiter::Blocked(std::string_view grpc_peer, absl::Time now) {
  if (IsUnixSocketPeer(grpc_peer)) return false;
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(PeerAddress(grpc_peer));
  if (it == peers_.end() || now >= it->second.blocked_until) return false;
  ++blocked_calls_;
  return true;
}

void AuthRateLimiter::RecordFailure(std::string_view grpc_peer, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ++failures_;
  if (IsUnixSocketPeer(grpc_peer)) return;
  if (peers_.size() >= limits_.max_tracked_peers) DropStale(now);
  if (peers_.size() >= limits_.max_tracked_peers) return;  // under a flood: counting stops, nothing grows
  PeerState& state = peers_[PeerAddress(grpc_peer)];
  if (now - state.window_start > limits_.window) {
    state.window_start = now;
    state.failures_in_window = 0;
  }
  if (++state.failures_in_window >= limits_.max_failures) {
    state.blocked_until = now + limits_.cool_down;
    LogWarning(absl::StrCat("auth: blocking ", PeerAddress(grpc_peer), " for ",
                            absl::FormatDuration(limits_.cool_down), " after ",
                            state.failures_in_window, " failed authentications within ",
                            absl::FormatDuration(limits_.window)));
    state.window_start = absl::InfinitePast();  // a fresh count after the cool-down
    state.failures_in_window = 0;
  }
}

void AuthRateLimiter::DropStale(absl::Time now) {
  for (auto it = peers_.begin(); it != peers_.end();) {
    const bool stale = now >= it->second.blocked_until && now - it->second.window_start > limits_.window;
    if (stale) {
      peers_.erase(it++);
    } else {
      ++it;
    }
  }
}

uint64_t AuthRateLimiter::failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

uint64_t AuthRateLimiter::blocked_calls() const {
  absl::MutexLock lock(&mu_);
  return blocked_calls_;
}

size_t AuthRateLimiter::blocked_peers(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [peer, state] : peers_) n += now < state.blocked_until ? 1 : 0;
  return n;
}

}  // namespace hsync::hub
