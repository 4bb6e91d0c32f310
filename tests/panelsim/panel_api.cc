#include "tests/panelsim/panel_api.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/panelsim/bot_detector.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/py_json.h"
#include "tests/panelsim/session_store.h"
#include "tests/panelsim/user_input.h"
#include "tests/panelsim/user_store.h"

namespace hsync::panelsim {
namespace {

constexpr char kNotFoundText[] =
    "404 Not Found: The requested URL was not found on the server. If you entered the URL "
    "manually please check your spelling and try again.";
constexpr char kMethodNotAllowedText[] =
    "405 Method Not Allowed: The method is not allowed for the requested URL.";

std::string FirstPathSegment(std::string_view path) {
  while (!path.empty() && path[0] == '/') path.remove_prefix(1);
  return std::string(path.substr(0, path.find('/')));
}

// application/json or application/<anything>+json, parameters ignored.
bool IsJsonContentType(const std::string& content_type) {
  const std::string type = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';'))));
  return type == "application/json" ||
         (absl::StartsWith(type, "application/") && absl::EndsWith(type, "+json"));
}

// werkzeug's redirect page for a strict-slashes redirect.
SimResponse PermanentRedirect(const SimRequest& request) {
  std::string location = absl::StrCat("http://", request.host, request.path, "/");
  if (!request.query.empty()) absl::StrAppend(&location, "?", request.query);
  SimResponse response;
  response.status = 308;
  response.content_type = "text/html; charset=utf-8";
  response.headers.push_back({"Location", location});
  response.body = absl::StrCat(
      "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
      "<p>You should be redirected automatically to the target URL: <a href=\"",
      location, "\">", location, "</a>. If not, click the link.\n");
  return response;
}

SimResponse JsonOk(std::string body) {
  SimResponse response;
  response.body = std::move(body);
  return response;
}

}  // namespace

SimResponse PanelApi::ErrorResponse(const SimRequest& request, const ApiError& error) const {
  SimResponse response;
  response.status = error.status;
  response.body = ErrorBody(error, request.accept);
  return response;
}

SimResponse PanelApi::Handle(const SimRequest& request, const RouteMatch& match) {
  if (absl::StrContains(request.path, "generate_204")) {
    SimResponse response;
    response.status = 204;
    response.content_type = "text/html; charset=utf-8";
    return response;
  }
  if (IsBotUserAgent(request.user_agent)) {
    return ErrorResponse(request, ApiError::Abort(400, "invalid"));
  }
  if (FirstPathSegment(request.path) != proxy_path_) {
    return ErrorResponse(request, ApiError::Abort(400, "invalid request"));
  }
  // Login (the panel's auth_before_request): by a non-empty key, else by the
  // admin of a live session cookie. A key that names no admin (a user's uuid
  // included) is refused before routing.
  const std::optional<std::string> session_id = CookieValue(request.cookie, kSessionCookieName);
  std::optional<Caller> caller;
  std::optional<std::optional<UserRecord>> prefetched;  // the path's user, read with the key
  if (request.api_key.has_value() && !request.api_key->empty()) {
    UserStore store(DbSession::ForThisThread());
    if (match.kind == RouteMatch::Kind::kRoute && !match.uuid.empty()) {
      // One round trip for the key and the user of the path (PATCH/GET/DELETE).
      absl::StatusOr<std::optional<UserStore::AdminAndUser>> both =
          store.FindAdminAndUser(*request.api_key, match.uuid);
      if (!both.ok()) {
        return ErrorResponse(request, ApiError::Exception(DatabaseErrorText(both.status())));
      }
      if (!both->has_value()) return LoginRefused(request, session_id);
      caller = Caller{(*both)->admin};
      prefetched = std::move((*both)->user);
    } else {
      absl::StatusOr<std::optional<AdminRecord>> admin = store.FindAdminByUuid(*request.api_key);
      if (!admin.ok()) {
        return ErrorResponse(request, ApiError::Exception(DatabaseErrorText(admin.status())));
      }
      if (!admin->has_value()) return LoginRefused(request, session_id);
      caller = Caller{**admin};
    }
  } else if (session_id.has_value()) {
    if (std::optional<int64_t> admin_id = sessions_.AdminOf(*session_id)) {
      UserStore store(DbSession::ForThisThread());
      absl::StatusOr<std::optional<AdminRecord>> admin = store.FindAdminById(*admin_id);
      if (!admin.ok()) {
        return ErrorResponse(request, ApiError::Exception(DatabaseErrorText(admin.status())));
      }
      if (!admin->has_value()) return LoginRefused(request, session_id);
      caller = Caller{**admin};
    }
  }
  if (!caller.has_value()) return Route(request, match, nullptr, nullptr);
  // Logged in: the session is saved (a new one unless the cookie named a live
  // one) and its cookie set, whatever the answer.
  const SessionStore::Saved session = sessions_.Save(session_id, caller->admin.id);
  SimResponse response =
      Route(request, match, &*caller, prefetched.has_value() ? &*prefetched : nullptr);
  response.headers.push_back({"Set-Cookie", SessionSetCookie(session.sid, session.expires)});
  return response;
}

SimResponse PanelApi::LoginRefused(const SimRequest& request,
                                   const std::optional<std::string>& session_id) {
  SimResponse response = ErrorResponse(request, ApiError::Abort(403, "Unathorized"));
  // The panel's logout empties the session, and an emptied session is deleted.
  if (session_id.has_value() && sessions_.Drop(*session_id)) {
    response.headers.push_back({"Set-Cookie", SessionDeleteCookie()});
  }
  return response;
}

SimResponse PanelApi::Route(const SimRequest& request, const RouteMatch& match,
                            const Caller* caller, const std::optional<UserRecord>* prefetched) {
  switch (match.kind) {
    case RouteMatch::Kind::kRedirect:
      return PermanentRedirect(request);
    case RouteMatch::Kind::kNotFound:
      return ErrorResponse(request, ApiError::Exception(kNotFoundText));
    case RouteMatch::Kind::kMethodNotAllowed:
      return ErrorResponse(request, ApiError::Exception(kMethodNotAllowedText));
    case RouteMatch::Kind::kRoute:
      break;
  }
  if (request.method == "OPTIONS") {
    SimResponse response;
    response.content_type = "text/html; charset=utf-8";
    response.headers.push_back({"Allow", absl::StrJoin(match.allowed_methods, ", ")});
    return response;
  }
  if (caller == nullptr) return ErrorResponse(request, ApiError::Abort(403, "Unathorized"));
  return Dispatch(request, match, *caller, prefetched);
}

SimResponse PanelApi::Dispatch(const SimRequest& request, const RouteMatch& match,
                               const Caller& caller,
                               const std::optional<UserRecord>* prefetched) {
  const std::string& name = match.name;
  if (name == "ping") {
    return JsonOk(PyDumps(nlohmann::json{{"msg", absl::StrCat(request.method == "HEAD" ? "GET" : request.method, ": PONG")}}));
  }
  if (name == "info") return JsonOk(PyDumps(nlohmann::json{{"version", version_}}));

  ServiceResult result;
  if (name == "list_users") {
    result = users_.List(caller);
  } else if (name == "get_user") {
    result = users_.Get(caller, match.uuid, prefetched);
  } else if (name == "delete_user") {
    result = users_.Delete(caller, match.uuid, prefetched);
  } else if (name == "create_user" || name == "patch_user") {
    const bool creating = name == "create_user";
    std::variant<UserInput, ApiError> input =
        ParseUserBody(request.body, IsJsonContentType(request.content_type),
                      creating ? UserBodyKind::kCreate : UserBodyKind::kPatch);
    if (const ApiError* error = std::get_if<ApiError>(&input)) {
      return ErrorResponse(request, *error);
    }
    const UserInput& in = std::get<UserInput>(input);
    result = creating ? users_.Create(caller, in)
                      : users_.Patch(caller, match.uuid, in, prefetched);
  } else {
    return ErrorResponse(request, ApiError::Exception(kNotFoundText));
  }
  if (result.error.has_value()) return ErrorResponse(request, *result.error);
  SimResponse response = JsonOk(std::move(result.body));
  response.listed_users = result.listed_users;
  return response;
}

}  // namespace hsync::panelsim
