#include "tests/panelsim/session_store.h"

#include <openssl/rand.h>

#include <atomic>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hsync::panelsim {
namespace {

// secrets.token_urlsafe(32), Flask-Session's session id: 43 url-safe characters.
std::string NewSessionId() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // OpenSSL's generator does not fail on Linux; fall back to something unique anyway.
    static std::atomic<uint64_t> counter{0};
    return absl::StrCat("fallback", counter.fetch_add(1), absl::ToUnixNanos(absl::Now()));
  }
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// werkzeug's http_date: "Wed, 12 Dec 2026 02:36:27 GMT".
std::string HttpDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
}

}  // namespace

std::optional<int64_t> SessionStore::AdminOf(std::string_view sid) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(std::string(sid));
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires <= absl::Now()) {
    sessions_.erase(it);  // Redis let the key expire
    return std::nullopt;
  }
  return it->second.admin_id;
}

SessionStore::Saved SessionStore::Save(std::optional<std::string_view> sid, int64_t admin_id) {
  const absl::Time expires = absl::Now() + kSessionLifetime;
  absl::MutexLock lock(&mu_);
  if (sid.has_value()) {
    auto it = sessions_.find(std::string(*sid));
    if (it != sessions_.end() && it->second.expires > absl::Now()) {
      it->second = Entry{admin_id, expires};
      return Saved{it->first, expires};
    }
  }
  std::string fresh = NewSessionId();
  sessions_[fresh] = Entry{admin_id, expires};
  counters_.CountSessionCreated();
  return Saved{std::move(fresh), expires};
}

bool SessionStore::Drop(std::string_view sid) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(std::string(sid));
  if (it == sessions_.end()) return false;
  const bool live = it->second.expires > absl::Now();
  sessions_.erase(it);
  return live;
}

std::optional<std::string> CookieValue(std::string_view cookie_header, std::string_view name) {
  const absl::string_view wanted(name.data(), name.size());
  for (absl::string_view pair :
       absl::StrSplit(absl::string_view(cookie_header.data(), cookie_header.size()), ';')) {
    pair = absl::StripAsciiWhitespace(pair);
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) continue;
    if (absl::StripAsciiWhitespace(pair.substr(0, eq)) != wanted) continue;
    absl::string_view value = absl::StripAsciiWhitespace(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return std::nullopt;
}

std::string SessionSetCookie(std::string_view sid, absl::Time expires) {
  return absl::StrCat(kSessionCookieName, "=", absl::string_view(sid.data(), sid.size()),
                      "; Expires=", HttpDate(expires),
                      "; HttpOnly; Path=/");
}

std::string SessionDeleteCookie() {
  return absl::StrCat(kSessionCookieName,
                      "=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/");
}

}  // namespace hsync::panelsim
