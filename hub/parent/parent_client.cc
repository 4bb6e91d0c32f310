#include "hub/parent/parent_client.h"

#include <unistd.h>

#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "hub/parent/panel_user_json.h"
#include "hub/parent/panel_user_list_parser.h"
#include "hub/parent/parent_client_http.h"

namespace hsync::hub {
namespace {

constexpr char kErrorPayloadUrl[] = "type.hiddify-sync/parent-error";
constexpr char kTransportPayload[] = "transport";
constexpr char kUserRoute[] = "/api/v2/admin/user/";

absl::Status MarkTransport(absl::Status status) {
  status.SetPayload(kErrorPayloadUrl, absl::Cord(kTransportPayload));
  return status;
}

// The panel's own error text: {"message": ...} or {"msg": ...} (PANEL.md §1
// "Errors"), plus a validation detail when present; else the start of the body.
std::string PanelErrorText(const std::string& body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    std::string text;
    for (const char* key : {"message", "msg"}) {
      auto it = parsed.find(key);
      if (it != parsed.end() && it->is_string()) {
        text = it->get<std::string>();
        break;
      }
    }
    auto detail = parsed.find("detail");
    if (detail != parsed.end() && !detail->is_null() && !(detail->is_object() && detail->empty())) {
      absl::StrAppend(&text, text.empty() ? "" : " ",
                      detail->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    if (!text.empty()) return ShortBodyForMessage(text, 300);
  }
  return ShortBodyForMessage(body);
}

// The messages the panel's 404 carries for "no such user" on each route
// (hiddifypanel user_api.py / users_api.py; PANEL.md §1).
constexpr std::string_view kUserNotFoundMessages[] = {"User not found", "user not found"};
constexpr std::string_view kNoUserMessages[] = {"You have no user"};

// True when `body` is the panel's own error object — {"detail":{...},
// "message":M} (Accept: application/json, what the hub sends) or {"msg":M}
// (Accept: */*), nothing else in it — and M is one of `messages`. A proxy or
// CDN in front of the panel answers 404 with HTML, an empty body or its own
// JSON: none of those may be taken for the panel's word.
bool IsPanelsOwn404(const std::string& body, absl::Span<const std::string_view> messages) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return false;
  const nlohmann::json* message = nullptr;
  if (parsed.size() == 2 && parsed.contains("detail") && parsed["detail"].is_object()) {
    auto it = parsed.find("message");
    if (it != parsed.end()) message = &*it;
  } else if (parsed.size() == 1) {
    auto it = parsed.find("msg");
    if (it != parsed.end()) message = &*it;
  }
  if (message == nullptr || !message->is_string()) return false;
  const std::string& text = message->get_ref<const std::string&>();
  for (std::string_view expected : messages) {
    if (text == expected) return true;
  }
  return false;
}

// `not_found_messages`: the panel's messages for "no such user" on this
// route; a 404 without one of them is not the panel's.
absl::Status ErrorForAnswer(const HttpAnswer& answer, const std::string& what,
                            absl::Span<const std::string_view> not_found_messages) {
  const long code = answer.status;
  std::string message;
  absl::StatusCode status_code;
  if (code >= 300 && code < 400) {
    status_code = absl::StatusCode::kFailedPrecondition;
    message = absl::StrCat(
        "parent: ", what, ": HTTP ", code,
        " redirect (not followed): the configured parent URL is wrong; it must be "
        "https://<panel-domain>/<admin_proxy_path> with nothing after the proxy path");
  } else if (code == 404 && !IsPanelsOwn404(answer.body, not_found_messages)) {
    // Nothing is concluded from it: no orphaning, no empty roster.
    status_code = absl::StatusCode::kUnavailable;
    message = absl::StrCat("parent: ", what, ": HTTP 404 that is not the panel's: ",
                           answer.body.empty() ? "(empty body)" : ShortBodyForMessage(answer.body));
  } else {
    message = absl::StrCat("parent: ", what, ": HTTP ", code, ": ", PanelErrorText(answer.body));
    if (code >= 500) {
      status_code = absl::StatusCode::kUnavailable;
    } else if (code == 404) {
      status_code = absl::StatusCode::kNotFound;
    } else if (code == 401 || code == 403) {
      status_code = absl::StatusCode::kPermissionDenied;
      absl::StrAppend(&message, " (check the parent API key)");
    } else if (code == 400 || code == 422) {
      status_code = absl::StatusCode::kInvalidArgument;
    } else {
      status_code = absl::StatusCode::kFailedPrecondition;
    }
  }
  absl::Status status(status_code, message);
  status.SetPayload(kErrorPayloadUrl, absl::Cord(absl::StrCat("http:", code)));
  return status;
}

// A uuid is put into the URL path: allow only what a uuid can contain.
bool IsPathSafeUuid(const std::string& uuid) {
  if (uuid.empty() || uuid.size() > 64) return false;
  for (char c : uuid) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

}  // namespace

struct ParentClient::Impl {
  ParentClientOptions options;
  std::string base;  // base_url without trailing slashes
  std::unique_ptr<ParentHttpSession> http;

  // Performs the request; any HTTP answer comes back, transport failures are
  // marked as such.
  absl::StatusOr<HttpAnswer> Request(
      std::string_view kind, std::string_view method, const std::string& route,
      const std::string& body, const std::string& what,
      const std::function<absl::Status(std::string_view)>* on_success_body = nullptr) {
    const absl::Time start = absl::Now();
    auto answer = http->Perform(method, base + route, body, what, on_success_body);
    if (options.on_call) {
      options.on_call(ParentCallRecord{kind, answer.ok() ? static_cast<int>(answer->status) : 0,
                                       absl::Now() - start});
    }
    if (!answer.ok()) {
      if (answer.status().code() == absl::StatusCode::kUnavailable) {
        return MarkTransport(answer.status());
      }
      return answer.status();
    }
    return answer;
  }

  // Request expecting a 2xx answer; anything else becomes its mapped error
  // (`not_found_messages`: see ErrorForAnswer).
  absl::StatusOr<HttpAnswer> Call(std::string_view kind, std::string_view method,
                                  const std::string& route, const std::string& body,
                                  absl::Span<const std::string_view> not_found_messages) {
    const std::string what = absl::StrCat(std::string(method), " ", route);
    ASSIGN_OR_RETURN(HttpAnswer answer, Request(kind, method, route, body, what));
    if (answer.status < 200 || answer.status >= 300) {
      return ErrorForAnswer(answer, what, not_found_messages);
    }
    return answer;
  }

  static absl::Status WithContext(const absl::Status& status, const std::string& what) {
    return absl::Status(status.code(), absl::StrCat("parent: ", what, ": ", status.message()));
  }
};

ParentClient::ParentClient(ParentClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

ParentClient::~ParentClient() = default;

absl::StatusOr<std::unique_ptr<ParentClient>> ParentClient::Create(ParentClientOptions options) {
  if (!absl::StartsWith(options.base_url, "https://") &&
      !absl::StartsWith(options.base_url, "http://")) {
    return absl::InvalidArgumentError(
        "parent url must start with https:// (or http:// for a local test panel)");
  }
  if (options.api_key.empty()) return absl::InvalidArgumentError("parent API key is empty");
  if (options.api_key.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError("parent API key contains a line break");
  }
  if (!options.ca_file.empty() && access(options.ca_file.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("parent CA file '", options.ca_file, "' is not readable"));
  }
  if (options.user_agent.empty()) return absl::InvalidArgumentError("empty User-Agent");
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("parent timeouts must be positive");
  }
  if (!options.verify_tls && absl::StartsWith(options.base_url, "https://")) {
    LogWarning("parent TLS certificate verification is OFF: anyone on the path can read the API key");
  }
  std::unique_ptr<ParentClient> client(new ParentClient(std::move(options)));
  Impl& impl = *client->impl_;
  impl.base = std::string(absl::StripSuffix(impl.options.base_url, "/"));
  while (absl::EndsWith(impl.base, "/")) impl.base.pop_back();
  HttpSessionOptions http;
  http.api_key = impl.options.api_key;
  http.user_agent = impl.options.user_agent;
  http.verify_tls = impl.options.verify_tls;
  http.ca_file = impl.options.ca_file;
  http.connect_timeout = impl.options.connect_timeout;
  http.request_timeout = impl.options.request_timeout;
  http.cookie_jar = impl.options.cookie_jar;
  ASSIGN_OR_RETURN(impl.http, ParentHttpSession::Create(std::move(http)));
  return client;
}

absl::StatusOr<PanelUserList> ParentClient::ListUsers() {
  PanelUserList list;
  ASSIGN_OR_RETURN(list.skipped, ListUsers([&list](hiddify_sync::v1::User user) {
                     list.users.push_back(std::move(user));
                   }));
  return list;
}

absl::StatusOr<std::vector<SkippedPanelUser>> ParentClient::ListUsers(
    const std::function<void(hiddify_sync::v1::User)>& on_user) {
  const std::string what = absl::StrCat("GET ", kUserRoute);
  PanelUserListParser parser(on_user);
  const std::function<absl::Status(std::string_view)> feed = [&parser](std::string_view piece) {
    return parser.Feed(piece);
  };
  auto answer = impl_->Request("list", "GET", kUserRoute, "", what, &feed);
  if (!answer.ok()) {
    if (answer.status().code() == absl::StatusCode::kDataLoss) {
      return Impl::WithContext(answer.status(), what);
    }
    return answer.status();
  }
  // The panel answers 404 "You have no user" when the caller owns no user:
  // an empty roster, not a failure (PANEL.md §1). Only the panel's own.
  if (answer->status == 404 && IsPanelsOwn404(answer->body, kNoUserMessages)) {
    return std::vector<SkippedPanelUser>{};
  }
  if (answer->status < 200 || answer->status >= 300) {
    return ErrorForAnswer(*answer, what, kNoUserMessages);
  }
  if (absl::Status done = parser.Finish(); !done.ok()) return Impl::WithContext(done, what);
  return parser.TakeSkipped();
}

absl::StatusOr<hiddify_sync::v1::User> ParentClient::GetUser(const std::string& uuid) {
  if (!IsPathSafeUuid(uuid)) {
    return absl::InvalidArgumentError(absl::StrCat("parent: malformed user uuid '",
                                                   ShortBodyForMessage(uuid, 64), "'"));
  }
  const std::string route = absl::StrCat(kUserRoute, uuid, "/");
  ASSIGN_OR_RETURN(HttpAnswer answer, impl_->Call("get", "GET", route, "", kUserNotFoundMessages));
  auto user = ParsePanelUser(answer.body);
  if (!user.ok()) return Impl::WithContext(user.status(), absl::StrCat("GET ", route));
  if (user->uuid() != uuid) {
    return absl::DataLossError(absl::StrCat("parent: GET ", route, ": answered user ",
                                            ShortBodyForMessage(user->uuid(), 64)));
  }
  return user;
}

absl::StatusOr<hiddify_sync::v1::User> ParentClient::PatchUser(const std::string& uuid,
                                                               const UserPatch& patch) {
  if (!IsPathSafeUuid(uuid)) {
    return absl::InvalidArgumentError(absl::StrCat("parent: malformed user uuid '",
                                                   ShortBodyForMessage(uuid, 64), "'"));
  }
  ASSIGN_OR_RETURN(std::string body, BuildPatchBody(patch));
  return PatchWithBody(uuid, body);
}

absl::StatusOr<hiddify_sync::v1::User> ParentClient::SyncUserCores(const std::string& uuid) {
  if (!IsPathSafeUuid(uuid)) {
    return absl::InvalidArgumentError(absl::StrCat("parent: malformed user uuid '",
                                                   ShortBodyForMessage(uuid, 64), "'"));
  }
  return PatchWithBody(uuid, "{}");
}

absl::StatusOr<hiddify_sync::v1::User> ParentClient::PatchWithBody(const std::string& uuid,
                                                                   const std::string& body) {
  const std::string route = absl::StrCat(kUserRoute, uuid, "/");
  ASSIGN_OR_RETURN(HttpAnswer answer,
                   impl_->Call("patch", "PATCH", route, body, kUserNotFoundMessages));
  auto user = ParsePanelUser(answer.body);
  if (!user.ok()) return Impl::WithContext(user.status(), absl::StrCat("PATCH ", route));
  if (user->uuid() != uuid) {
    return absl::DataLossError(absl::StrCat("parent: PATCH ", route, ": answered user ",
                                            ShortBodyForMessage(user->uuid(), 64)));
  }
  return user;
}

const ParentClientOptions& ParentClient::options() const { return impl_->options; }

absl::Status ParentClient::Ping() {
  // The ping route has no "not found" of its own: every 404 is an error.
  return impl_->Call("ping", "GET", "/api/v2/panel/ping/", "", {}).status();
}

bool IsParentTransportError(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorPayloadUrl);
  return payload.has_value() && *payload == kTransportPayload;
}

std::optional<int> ParentHttpStatus(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  const std::string text(*payload);
  absl::string_view rest(text);
  int code = 0;
  if (!absl::ConsumePrefix(&rest, "http:") || !absl::SimpleAtoi(rest, &code)) return std::nullopt;
  return code;
}

}  // namespace hsync::hub
