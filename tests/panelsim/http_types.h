// panelsim's view of an HTTP exchange, independent of the server library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hsync::panelsim {

struct SimRequest {
  std::string method;
  std::string path;   // decoded path, e.g. "/proxy/api/v2/admin/user/"
  std::string query;  // raw query string without '?', may be empty
  std::string body;
  std::string host;   // Host header
  std::string user_agent;
  std::string accept;
  std::string content_type;
  std::optional<std::string> api_key;  // Hiddify-API-Key header
  std::string cookie;                  // Cookie header, may be empty
};

struct SimResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t listed_users = 0;  // users in a user-list answer (the request cost model)
};

}  // namespace hsync::panelsim
