// One libcurl easy handle, reused for every request so the connection to the
// parent stays open (keep-alive). Sends the fixed header set of PANEL.md §1,
// never follows redirects, never uses signals. Not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hub/parent/parent_cookie_jar.h"

namespace hsync::hub {

struct HttpSessionOptions {
  std::string api_key;  // sent as Hiddify-API-Key; never logged
  std::string user_agent;
  bool verify_tls = true;
  std::string ca_file;  // empty = system bundle
  absl::Duration connect_timeout;
  absl::Duration request_timeout;
  size_t max_body_bytes = size_t{512} << 20;  // a 100k-user list is ~70 MB
  // Shared with the hub's other sessions; null = this session's own jar.
  std::shared_ptr<ParentCookieJar> cookie_jar;
};

struct HttpAnswer {
  long status = 0;
  std::string body;
};

class ParentHttpSession {
 public:
  static absl::StatusOr<std::unique_ptr<ParentHttpSession>> Create(HttpSessionOptions options);
  ~ParentHttpSession();

  // Performs `method` on `url` with `body` (sent only when non-empty). Any
  // HTTP answer -> HttpAnswer (whatever its status). No answer (refused,
  // reset, timeout, TLS failure) -> Unavailable whose message names `what`
  // and the curl error, never a header. A body above max_body_bytes -> DataLoss.
  // With `on_success_body`, the body of a 2xx answer is not kept: each piece
  // goes to it as it arrives (answer.body stays empty); an error it returns
  // aborts the transfer and is returned. Other answers are kept as usual.
  absl::StatusOr<HttpAnswer> Perform(
      std::string_view method, const std::string& url, const std::string& body,
      std::string_view what,
      const std::function<absl::Status(std::string_view)>* on_success_body = nullptr);

 private:
  ParentHttpSession() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hsync::hub
