// The Hiddify panel's REST API v2 for users (PANEL.md §1), request by request:
// the panel's order of checks (bot User-Agent, proxy path, API key, routing,
// login), then the user endpoints, with errors shaped by the Accept header.
#pragma once

#include <string>

#include "tests/panelsim/http_types.h"
#include "tests/panelsim/panel_routes.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/user_service.h"

namespace hsync::panelsim {

// The panel version panel/info reports.
inline constexpr char kPanelVersion[] = "12.3.0";

class PanelApi {
 public:
  PanelApi(std::string proxy_path, SimClock& clock, SimCounters& counters)
      : proxy_path_(std::move(proxy_path)), clock_(clock), users_(clock, counters) {}

  const std::string& proxy_path() const { return proxy_path_; }
  RouteMatch Match(const SimRequest& request) const {
    return MatchPanelRoute(proxy_path_, request.method, request.path);
  }
  // Answers `request` (whose route is `match`) completely.
  SimResponse Handle(const SimRequest& request, const RouteMatch& match);

 private:
  // `prefetched`: the path's user as read together with the key (null if not read).
  SimResponse Dispatch(const SimRequest& request, const RouteMatch& match, const Caller& caller,
                       const std::optional<UserRecord>* prefetched);
  SimResponse ErrorResponse(const SimRequest& request, const ApiError& error) const;

  const std::string proxy_path_;
  SimClock& clock_;
  UserService users_;
};

}  // namespace hsync::panelsim
