// The hub's only way to talk to the parent panel's REST API v2 (PANEL.md §1):
// libcurl, one reused connection per client, Accept: application/json, a
// plain product User-Agent, TLS verified by default. Not thread-safe: each
// thread that talks to the parent owns its own ParentClient.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/parent/parent_cookie_jar.h"

namespace hsync::hub {

// One finished request to the parent, for metrics.
struct ParentCallRecord {
  std::string_view kind;  // "list" | "get" | "patch" | "ping"
  int http_status = 0;    // 0 = no answer (refused, reset, timeout, TLS)
  absl::Duration duration;
};

struct ParentClientOptions {
  std::string base_url;  // https://panel.example/<admin_proxy_path> (no trailing slash needed)
  std::string api_key;   // Hiddify-API-Key; never logged
  bool verify_tls = true;
  std::string ca_file;   // optional extra CA bundle
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration request_timeout = absl::Seconds(20);
  std::string user_agent = "hiddify-sync/0.1.0";
  // The panel session's cookies, shared by the clients it is given to (the
  // hub gives one jar to all its clients: one panel session per hub run);
  // null = the client keeps its own.
  std::shared_ptr<ParentCookieJar> cookie_jar;
  // Called on the calling thread after every request (may be empty).
  std::function<void(const ParentCallRecord&)> on_call;
};

// The fields a PATCH may set; unset fields are not sent. Never contains uuid.
struct UserPatch {
  std::optional<uint64_t> current_usage_bytes;  // absolute, sent as exact GiB float
  std::optional<std::string> last_online;       // "YYYY-MM-DD HH:MM:SS"
  std::optional<int32_t> package_days;          // needed for start_date to apply
  std::optional<std::string> start_date;        // "YYYY-MM-DD"
};

// One element of the parent's user list that the hub could not read (e.g. a
// negative GiB value, which the panel accepts, or a malformed date).
struct SkippedPanelUser {
  std::string uuid;    // "" when the element has no readable uuid
  std::string field;   // the field that failed ("" = the element as a whole): the cause
  std::string reason;  // which field, and why (no secret: never a key's value)
};

// The parent's user list as read: the users the hub could read, and the
// elements it left out.
struct PanelUserList {
  std::vector<hiddify_sync::v1::User> users;
  std::vector<SkippedPanelUser> skipped;
};

// Error mapping of every call: transport failure/timeout -> Unavailable;
// HTTP 5xx -> Unavailable (message carries the panel's text); a 404 whose
// body is the panel's own error (PANEL.md §1 "Errors": {"detail":{..},
// "message":M} or {"msg":M}) with the message that route gives for "no such
// user" -> NotFound; any other 404 (a proxy or CDN in front of the panel,
// HTML, empty, other JSON) -> Unavailable "HTTP 404 that is not the panel's:
// <short body>", never NotFound;
// 401/403 -> PermissionDenied; 400/422 -> InvalidArgument; a body that is not
// the expected JSON -> DataLoss. Messages never contain the API key.
// Also: a 3xx redirect is never followed -> FailedPrecondition saying that the
// configured base_url is wrong (the panel redirects only URLs it considers
// malformed); any other 4xx -> FailedPrecondition. Use
// IsParentTransportError()/ParentHttpStatus() to tell "parent unreachable"
// from "parent answered an error" (both Unavailable).
class ParentClient {
 public:
  // InvalidArgument for options that cannot work (no http(s) base_url, empty
  // api_key, ca_file not readable). No network I/O happens here.
  static absl::StatusOr<std::unique_ptr<ParentClient>> Create(ParentClientOptions options);
  ~ParentClient();

  // GET /api/v2/admin/user/ — every user; the panel's own 404 "You have no
  // user" = empty list. An element that cannot be read is left out and
  // listed in `skipped`; a body that is not a JSON array fails the whole read.
  absl::StatusOr<PanelUserList> ListUsers();
  // The same read, streamed: each user goes to `on_user` as its element is
  // parsed (memory of one user, not of the list); the elements left out are
  // returned. On error the users given so far must be discarded.
  absl::StatusOr<std::vector<SkippedPanelUser>> ListUsers(
      const std::function<void(hiddify_sync::v1::User)>& on_user);
  // GET /api/v2/admin/user/<uuid>/. NotFound only for the panel's own
  // "User not found" / "user not found".
  absl::StatusOr<hiddify_sync::v1::User> GetUser(const std::string& uuid);
  // PATCH /api/v2/admin/user/<uuid>/ with `patch` (body: see BuildPatchBody in
  // hub/parent/panel_user_json.h); returns the user the panel answered with.
  // NotFound as for GetUser.
  absl::StatusOr<hiddify_sync::v1::User> PatchUser(const std::string& uuid, const UserPatch& patch);
  // PATCH /api/v2/admin/user/<uuid>/ with the body {}: the row stays as it
  // is and the panel's proxy-core drivers (xray, live) follow it (PANEL.md
  // §4: removed, then added back when is_active). NotFound as for GetUser.
  absl::StatusOr<hiddify_sync::v1::User> SyncUserCores(const std::string& uuid);
  // GET /api/v2/panel/ping/.
  absl::Status Ping();

  const ParentClientOptions& options() const;

 private:
  explicit ParentClient(ParentClientOptions options);
  absl::StatusOr<hiddify_sync::v1::User> PatchWithBody(const std::string& uuid,
                                                       const std::string& body);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when `status` is a ParentClient error from the transport (connection
// refused/reset/dropped, DNS, TLS, timeout): the parent did not answer at all.
bool IsParentTransportError(const absl::Status& status);
// The HTTP status code behind a ParentClient error that came from an answer.
std::optional<int> ParentHttpStatus(const absl::Status& status);

}  // namespace hsync::hub
