#include "tests/panelsim/panel_routes.h"

#include "absl/strings/ascii.h"

namespace hsync::panelsim {
namespace {

bool LooksLikeUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

struct PathRoute {
  bool found = false;
  std::string uuid;
  // method -> route name
  std::vector<std::pair<std::string, std::string>> methods;
};

// Matches `rest` (the path after "/<proxy_path>") exactly against the route table.
PathRoute MatchExact(std::string_view rest) {
  PathRoute r;
  if (rest == "/api/v2/panel/ping/") {
    r.found = true;
    for (const char* m : {"GET", "POST", "PATCH", "DELETE", "PUT"}) r.methods.push_back({m, "ping"});
  } else if (rest == "/api/v2/panel/info/") {
    r.found = true;
    r.methods = {{"GET", "info"}};
  } else if (rest == "/api/v2/admin/user/") {
    r.found = true;
    r.methods = {{"GET", "list_users"}, {"POST", "create_user"}};
  } else if (constexpr std::string_view kUserPrefix = "/api/v2/admin/user/";
             rest.size() == kUserPrefix.size() + 37 && rest.substr(0, kUserPrefix.size()) == kUserPrefix &&
             rest.back() == '/' && LooksLikeUuid(rest.substr(kUserPrefix.size(), 36))) {
    r.found = true;
    r.uuid = absl::AsciiStrToLower(std::string(rest.substr(kUserPrefix.size(), 36)));
    r.methods = {{"GET", "get_user"}, {"PATCH", "patch_user"}, {"DELETE", "delete_user"}};
  }
  return r;
}

}  // namespace

RouteMatch MatchPanelRoute(std::string_view proxy_path, std::string_view method,
                           std::string_view path) {
  RouteMatch match;
  std::string_view rest = path;
  const std::string prefix = "/" + std::string(proxy_path);
  if (rest.substr(0, prefix.size()) != prefix) return match;
  rest.remove_prefix(prefix.size());
  if (!rest.empty() && rest[0] != '/') return match;

  PathRoute route = MatchExact(rest);
  bool redirect = false;
  if (!route.found && (rest.empty() || rest.back() != '/')) {
    route = MatchExact(std::string(rest) + "/");
    redirect = route.found;
  }
  if (!route.found) return match;
  for (const auto& [m, name] : route.methods) match.allowed_methods.push_back(m);
  match.allowed_methods.push_back("HEAD");
  match.allowed_methods.push_back("OPTIONS");

  const std::string_view effective = method == "HEAD" ? std::string_view("GET") : method;
  std::string name;
  for (const auto& [m, n] : route.methods) {
    if (m == effective) name = n;
  }
  if (name.empty() && method != "OPTIONS") {
    match.kind = RouteMatch::Kind::kMethodNotAllowed;
    return match;
  }
  match.kind = redirect ? RouteMatch::Kind::kRedirect : RouteMatch::Kind::kRoute;
  match.name = name;
  match.uuid = route.uuid;
  return match;
}

}  // namespace hsync::panelsim
