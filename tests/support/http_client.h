// A small libcurl client for tests: one request at a time, full control of
// method, headers and body, the raw answer back.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hsync::testing {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

class TestHttpClient {
 public:
  explicit TestHttpClient(std::string base_url);  // e.g. "http://127.0.0.1:1234"
  ~TestHttpClient();
  // `path` is appended to the base URL. Redirects are not followed.
  // Transport errors (refused, reset, timeout) -> Unavailable/DeadlineExceeded.
  absl::StatusOr<HttpResponse> Request(const std::string& method, const std::string& path,
                                       const std::string& body = "",
                                       const std::vector<std::string>& headers = {},
                                       absl::Duration timeout = absl::Seconds(10));

 private:
  std::string base_url_;
  void* curl_;
};

}  // namespace hsync::testing
