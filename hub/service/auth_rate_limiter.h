// Slows down token guessing: counts failed node authentications per peer
// address (the IP, without the port) and, after `max_failures` failures
// within `window`, refuses every call from that address for `cool_down`
// without looking at its token (the hub answers RESOURCE_EXHAUSTED). Loopback
// addresses are counted like any other: a local TCP forwarder (haproxy in
// front of port 443) makes the whole internet arrive from 127.0.0.1. Only
// calls over a unix socket (peer "unix:", the hub's root-only operator
// socket) are never counted or blocked. A success does not reset the count,
// so a valid token cannot be used to keep guessing. Thread-safe; memory is bounded (at most
// `max_tracked_peers` addresses, stale ones dropped first).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hsync::hub {

struct AuthRateLimits {
  int max_failures = 10;
  absl::Duration window = absl::Seconds(60);
  absl::Duration cool_down = absl::Seconds(60);
  size_t max_tracked_peers = 10000;
};

// "ipv4:1.2.3.4:5" -> "1.2.3.4", "ipv6:[::1]:5" -> "::1"; anything else as is.
std::string PeerAddress(std::string_view grpc_peer);

class AuthRateLimiter {
 public:
  explicit AuthRateLimiter(AuthRateLimits limits = {}) : limits_(limits) {}

  // True when calls from `grpc_peer` are to be refused unchecked right now
  // (counted in blocked_calls()).
  bool Blocked(std::string_view grpc_peer, absl::Time now = absl::Now());
  // One failed authentication from `grpc_peer` (counted in failures()).
  void RecordFailure(std::string_view grpc_peer, absl::Time now = absl::Now());

  uint64_t failures() const;
  uint64_t blocked_calls() const;
  // Addresses blocked right now.
  size_t blocked_peers(absl::Time now = absl::Now()) const;

 private:
  struct PeerState {
    absl::Time window_start = absl::InfinitePast();
    int failures_in_window = 0;
    absl::Time blocked_until = absl::InfinitePast();
  };
  void DropStale(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AuthRateLimits limits_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, PeerState> peers_ ABSL_GUARDED_BY(mu_);
  uint64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t blocked_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace hsync::hub
