#include "hub/parent/parent_client_http.h"

#include <curl/curl.h>

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hsync::hub {
namespace {

void GlobalCurlInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct BodySink {
  std::string* body = nullptr;
  size_t max = 0;
  bool overflow = false;
  CURL* curl = nullptr;
  const std::function<absl::Status(std::string_view)>* on_success_body = nullptr;
  long status = -1;  // of the answer, once known
  absl::Status consumer_error;
};

size_t WriteBody(char* data, size_t size, size_t count, void* userdata) {
  auto* sink = static_cast<BodySink*>(userdata);
  const size_t n = size * count;
  if (sink->on_success_body != nullptr) {
    if (sink->status < 0) curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &sink->status);
    if (sink->status >= 200 && sink->status < 300) {
      sink->consumer_error = (*sink->on_success_body)(std::string_view(data, n));
      return sink->consumer_error.ok() ? n : 0;  // 0 aborts the transfer
    }
  }
  if (sink->body->size() + n > sink->max) {
    sink->overflow = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  sink->body->append(data, n);
  return n;
}

long Millis(absl::Duration d) { return static_cast<long>(absl::ToInt64Milliseconds(d)); }

}  // namespace

struct ParentHttpSession::Impl {
  HttpSessionOptions options;
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {0};

  ~Impl() {
    if (curl != nullptr) curl_easy_cleanup(curl);
    if (headers != nullptr) curl_slist_free_all(headers);
  }
};

absl::StatusOr<std::unique_ptr<ParentHttpSession>> ParentHttpSession::Create(
    HttpSessionOptions options) {
  GlobalCurlInit();
  std::unique_ptr<ParentHttpSession> session(new ParentHttpSession());
  session->impl_ = std::make_unique<Impl>();
  Impl& impl = *session->impl_;
  impl.options = std::move(options);
  impl.curl = curl_easy_init();
  if (impl.curl == nullptr) return absl::InternalError("parent: curl_easy_init failed");
  const std::string key_header = absl::StrCat("Hiddify-API-Key: ", impl.options.api_key);
  for (const std::string& h : {key_header, std::string("Accept: application/json"),
                               std::string("Content-Type: application/json"),
                               std::string("Expect:")}) {
    curl_slist* next = curl_slist_append(impl.headers, h.c_str());
    if (next == nullptr) return absl::InternalError("parent: curl_slist_append failed");
    impl.headers = next;
  }
  return session;
}

ParentHttpSession::~ParentHttpSession() = default;

absl::StatusOr<HttpAnswer> ParentHttpSession::Perform(std::string_view method,
                                                      const std::string& url,
                                                      const std::string& body,
                                                      std::string_view what,
                                                      const std::function<absl::Status(std::string_view)>*
                                                          on_success_body) {
  Impl& impl = *impl_;
  CURL* c = impl.curl;
  // Reset drops the previous request's options but keeps the open connection.
  curl_easy_reset(c);
  HttpAnswer answer;
  BodySink sink;
  sink.body = &answer.body;
  sink.max = impl.options.max_body_bytes;
  sink.curl = c;
  sink.on_success_body = on_success_body;
  impl.error[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, Millis(impl.options.connect_timeout));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, Millis(impl.options.request_timeout));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, impl.headers);
  // In-memory cookie jar: send the panel's session cookie back, or every call
  // creates a new 10-day session in the panel's Redis (PANEL.md §1). The
  // cookies survive curl_easy_reset; the engine (and the jar shared by the
  // hub's sessions) is switched on again here.
  ParentCookieJar* jar = impl.options.cookie_jar.get();
  if (jar != nullptr) curl_easy_setopt(c, CURLOPT_SHARE, static_cast<CURLSH*>(jar->curl_share()));
  curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, impl.options.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, impl.options.verify_tls ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, impl.options.verify_tls ? 2L : 0L);
  if (!impl.options.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, impl.options.ca_file.c_str());
  }
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, impl.error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    // libcurl copies option strings (POSTFIELDS excepted: `body` outlives perform).
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, std::string(method).c_str());
    if (!body.empty()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  }
  // Until the shared jar holds the panel's cookie, one request at a time.
  std::unique_lock<std::mutex> first_request =
      jar != nullptr ? jar->EnterRequest() : std::unique_lock<std::mutex>();
  const CURLcode rc = curl_easy_perform(c);
  if (first_request.owns_lock()) {
    curl_slist* cookies = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_COOKIELIST, &cookies) == CURLE_OK && cookies != nullptr) {
      jar->NoteCookie();
    }
    curl_slist_free_all(cookies);
    first_request.unlock();
  }
  if (sink.overflow) {
    return absl::DataLossError(absl::StrCat("parent: ", std::string(what), ": answer larger than ",
                                            impl.options.max_body_bytes, " bytes"));
  }
  if (!sink.consumer_error.ok()) return sink.consumer_error;
  if (rc != CURLE_OK) {
    const std::string reason = impl.error[0] != '\0' ? std::string(impl.error)
                                                     : std::string(curl_easy_strerror(rc));
    return absl::UnavailableError(
        absl::StrCat("parent unreachable: ", std::string(what), ": ", reason));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

}  // namespace hsync::hub
