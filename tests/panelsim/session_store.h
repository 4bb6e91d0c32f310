// The panel's server-side sessions (Flask-Session in Redis, PANEL.md §1): the
// session id travels in the "session" cookie; a session remembers the admin
// logged in with it and lives 10 days from its last save. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/panelsim/sim_counters.h"

namespace hsync::panelsim {

// Flask's SESSION_COOKIE_NAME (the panel keeps the default).
inline constexpr char kSessionCookieName[] = "session";
// The panel's PERMANENT_SESSION_LIFETIME.
inline constexpr absl::Duration kSessionLifetime = absl::Hours(24 * 10);

class SessionStore {
 public:
  explicit SessionStore(SimCounters& counters) : counters_(counters) {}

  // The admin id stored in session `sid`, if that session exists and has not expired.
  std::optional<int64_t> AdminOf(std::string_view sid);

  struct Saved {
    std::string sid;
    absl::Time expires;
  };
  // Logs `admin_id` into session `sid` if it is live, else into a new
  // session (counted as created); renews its lifetime.
  Saved Save(std::optional<std::string_view> sid, int64_t admin_id);

  // Deletes session `sid` (the panel's logout empties a session, and
  // Flask-Session deletes an emptied one). Returns whether it was live.
  bool Drop(std::string_view sid);

 private:
  struct Entry {
    int64_t admin_id = 0;
    absl::Time expires;
  };

  SimCounters& counters_;
  absl::Mutex mu_;
  std::unordered_map<std::string, Entry> sessions_ ABSL_GUARDED_BY(mu_);
};

// The value of cookie `name` in a Cookie request header, if present.
std::optional<std::string> CookieValue(std::string_view cookie_header, std::string_view name);

// Set-Cookie values as Flask-Session writes them: the session's id with its
// expiry ("session=SID; Expires=Wdy, DD Mon YYYY HH:MM:SS GMT; HttpOnly; Path=/"),
// and the deletion of the cookie after a logout emptied the session.
std::string SessionSetCookie(std::string_view sid, absl::Time expires);
std::string SessionDeleteCookie();

}  // namespace hsync::panelsim
