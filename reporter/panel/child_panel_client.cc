#include "reporter/panel/child_panel_client.h"

#include <curl/curl.h>

#include "absl/strings/str_cat.h"
#include "reporter/version.h"

namespace hsync::reporter {
namespace {

size_t KeepBody(char* data, size_t size, size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() < 2048) body->append(data, size * n);
  return size * n;
}

// The panel's error body, cut short; it never holds the key or the path.
std::string Excerpt(const std::string& body) {
  std::string s = body.substr(0, 160);
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

ChildPanelClient::ChildPanelClient(CredentialSource credentials, absl::Duration timeout)
    : source_(std::move(credentials)), timeout_(timeout) {}

ChildPanelClient::~ChildPanelClient() {
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
}

absl::Status ChildPanelClient::SyncUser(const std::string& uuid) { return Call("PATCH", uuid); }

absl::Status ChildPanelClient::DeleteUser(const std::string& uuid) { return Call("DELETE", uuid); }

absl::Status ChildPanelClient::Call(const char* method, const std::string& uuid) {
  if (!credentials_.has_value()) {
    absl::StatusOr<PanelCredentials> resolved = source_();
    if (!resolved.ok()) return resolved.status();
    credentials_ = *std::move(resolved);
  }
  if (curl_ == nullptr) {
    curl_ = curl_easy_init();
    if (curl_ == nullptr) return absl::InternalError("panel: curl_easy_init failed");
    curl_easy_setopt(curl_, CURLOPT_COOKIEFILE, "");  // in-memory cookie jar, kept across calls
  }
  const std::string url = absl::StrCat(credentials_->base_url, "/api/v2/admin/user/", uuid, "/");
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers,
                              absl::StrCat("Hiddify-API-Key: ", credentials_->api_key).c_str());
  const std::string user_agent = absl::StrCat("hiddify-sync-reporter/", kReporterVersion);
  std::string body;
  const bool patch = std::string(method) == "PATCH";
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method);
  if (patch) {
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, "{}");
  } else {
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, nullptr);
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl_, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, KeepBody);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl_);
  long http_status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &http_status);
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  const std::string what = absl::StrCat("panel API: ", method, " user ", uuid);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(what, ": ", curl_easy_strerror(rc)));
  }
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  if (http_status == 404) return absl::NotFoundError(absl::StrCat(what, ": HTTP 404 ", Excerpt(body)));
  if (http_status == 400 || http_status == 401 || http_status == 403) {
    credentials_.reset();  // the key or the admin path may have changed: read them again
  }
  return absl::UnavailableError(absl::StrCat(what, ": HTTP ", http_status, " ", Excerpt(body)));
}

}  // namespace hsync::reporter
