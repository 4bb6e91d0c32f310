// The routes panelsim serves under /<proxy_path>/api/v2/ and how a path
// matches them, with werkzeug's rules: a missing trailing slash redirects,
// the <uuid> segment must look like a uuid (any case, reported lower case),
// a wrong method is "405", anything else "404".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hsync::panelsim {

struct RouteMatch {
  enum class Kind { kRoute, kRedirect, kMethodNotAllowed, kNotFound };
  Kind kind = Kind::kNotFound;
  std::string name;  // ping, info, list_users, create_user, get_user, patch_user, delete_user
  std::string uuid;  // for the per-user routes, lower case
  std::vector<std::string> allowed_methods;  // of the matched path
};

// `path` is the full request path; `proxy_path` the admin proxy segment.
RouteMatch MatchPanelRoute(std::string_view proxy_path, std::string_view method,
                           std::string_view path);

}  // namespace hsync::panelsim
