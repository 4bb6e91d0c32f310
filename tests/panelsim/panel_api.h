// The Hiddify panel's REST API v2 for users (PANEL.md §1), request by request:
// the panel's order of checks (bot User-Agent, proxy path, API key or session
// cookie, routing, login), then the user endpoints, with errors shaped by the
// Accept header. A logged-in request saves its server-side session and gets
// the session cookie, as the panel's Flask-Session does.
#pragma once

#include <string>

#include "tests/panelsim/http_types.h"
#include "tests/panelsim/panel_routes.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/session_store.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/user_service.h"

namespace hsync::panelsim {

class PanelApi {
 public:
  // `version`: what panel/info answers (PanelVersionOf the generation).
  PanelApi(std::string proxy_path, std::string version, SimClock& clock, SimCounters& counters,
           ProxyCores& cores, QuickApplyUsers& quick_apply)
      : proxy_path_(std::move(proxy_path)),
        version_(std::move(version)),
        clock_(clock),
        users_(clock, counters, cores, quick_apply),
        sessions_(counters) {}

  const std::string& proxy_path() const { return proxy_path_; }
  RouteMatch Match(const SimRequest& request) const {
    return MatchPanelRoute(proxy_path_, request.method, request.path);
  }
  // Answers `request` (whose route is `match`) completely.
  SimResponse Handle(const SimRequest& request, const RouteMatch& match);

 private:
  // 403 for a login that failed; drops the request's session if it was live.
  SimResponse LoginRefused(const SimRequest& request, const std::optional<std::string>& session_id);
  // Routing errors, OPTIONS, then 403 without `caller` or the endpoint.
  SimResponse Route(const SimRequest& request, const RouteMatch& match, const Caller* caller,
                    const std::optional<UserRecord>* prefetched);
  // `prefetched`: the path's user as read together with the key (null if not read).
  SimResponse Dispatch(const SimRequest& request, const RouteMatch& match, const Caller& caller,
                       const std::optional<UserRecord>* prefetched);
  SimResponse ErrorResponse(const SimRequest& request, const ApiError& error) const;

  const std::string proxy_path_;
  const std::string version_;
  SimClock& clock_;
  UserService users_;
  SessionStore sessions_;
};

}  // namespace hsync::panelsim
