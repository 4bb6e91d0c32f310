// One panel session for every ParentClient of a hub (the applier's and the
// roster poller's): the panel stores a server-side session in its Redis for
// every call that comes without its cookie, for 10 days (PANEL.md §1), so
// the hub's clients share one in-memory cookie jar (a libcurl share of
// cookies) and, until the jar holds the panel's cookie, send their requests
// one at a time — the first answer sets the cookie, every later request of
// every client carries it: one session per hub run. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"

namespace hsync::hub {

class ParentCookieJar {
 public:
  static absl::StatusOr<std::shared_ptr<ParentCookieJar>> Create();
  ~ParentCookieJar();
  ParentCookieJar(const ParentCookieJar&) = delete;
  ParentCookieJar& operator=(const ParentCookieJar&) = delete;

  // The libcurl share handle (CURLSH*) each request attaches.
  void* curl_share() const { return share_; }
  // Call before a request: while the jar has no cookie yet the returned lock
  // is held (keep it until the answer has been seen); else it is empty.
  std::unique_lock<std::mutex> EnterRequest();
  // The jar holds the panel's cookie (seen after a request).
  void NoteCookie() { has_cookie_.store(true); }
  bool has_cookie() const { return has_cookie_.load(); }

 private:
  ParentCookieJar() = default;
  struct Locks;

  void* share_ = nullptr;
  std::unique_ptr<Locks> locks_;
  std::mutex first_request_mu_;
  std::atomic<bool> has_cookie_{false};
};

}  // namespace hsync::hub
