#include "reporter/panel/apply_trigger.h"

#include <curl/curl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "reporter/util/backoff.h"
#include "reporter/version.h"

extern char** environ;

namespace hsync::reporter {
namespace {

// "scheme://host:port/..." -> "scheme://host:port/...": the path of a local
// panel URL may hold its secret admin path, so it never reaches a log line.
std::string RedactUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "<url>";
  const size_t path = url.find('/', scheme + 3);
  if (path == std::string::npos) return url;
  return url.substr(0, path) + "/...";
}

}  // namespace

ApplyTrigger::ApplyTrigger(ApplyTriggerOptions options, StatusBoard* board)
    : options_(std::move(options)), board_(board) {}

ApplyTrigger::~ApplyTrigger() { Stop(); }

void ApplyTrigger::Start() {
  if (!enabled() || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void ApplyTrigger::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ApplyTrigger::Request() {
  if (!enabled()) return;
  absl::MutexLock lock(&mu_);
  if (!pending_) {
    pending_ = true;
    due_at_ = absl::Now() + options_.debounce;
  }
  board_->Update([](auto& r) { r.set_apply_pending(true); });
}

void ApplyTrigger::Loop() {
  Backoff backoff(options_.retry_initial, options_.retry_max);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || (pending_ && absl::Now() >= due_at_);
      };
      // Wake at least every 100 ms to notice the debounce deadline.
      while (!ready()) mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(100));
      if (stopping_) return;
      pending_ = false;
    }
    absl::Status status = RunOnce();
    if (status.ok()) {
      backoff.Reset();
      absl::MutexLock lock(&mu_);
      const bool again = pending_;
      board_->Update([again](auto& r) {
        r.set_apply_runs(r.apply_runs() + 1);
        r.set_apply_pending(again);
      });
      continue;
    }
    const std::string message = absl::StrCat("apply trigger failed: ", status.message());
    LogError(message);
    board_->Update([](auto& r) {
      r.set_apply_runs(r.apply_runs() + 1);
      r.set_apply_failures(r.apply_failures() + 1);
      r.set_apply_pending(true);
    });
    board_->RecordError(message);
    absl::MutexLock lock(&mu_);
    const absl::Time retry_at = absl::Now() + backoff.Next();
    if (!pending_ || due_at_ > retry_at) due_at_ = retry_at;
    pending_ = true;
  }
}

absl::Status ApplyTrigger::RunOnce() {
  if (!options_.url.empty()) return PostUrl();
  if (!options_.command.empty()) return RunCommand();
  return absl::OkStatus();
}

absl::Status ApplyTrigger::RunCommand() {
  const absl::Time started = absl::Now();
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  std::string sh = "/bin/sh", dash_c = "-c", command = options_.command;
  char* argv[] = {sh.data(), dash_c.data(), command.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/sh", nullptr, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return absl::InternalError(absl::StrCat("cannot start /bin/sh: ", std::strerror(rc)));
  int wstatus = 0;
  while (true) {
    const pid_t done = waitpid(pid, &wstatus, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return absl::InternalError("waitpid failed for the apply command");
    if (absl::Now() - started > options_.timeout) {
      kill(-pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      return absl::DeadlineExceededError(absl::StrCat("command \"", options_.command,
                                                      "\" timed out after ",
                                                      absl::FormatDuration(options_.timeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
    LogInfo(absl::StrCat("apply: \"", options_.command, "\" succeeded in ",
                         absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Milliseconds(1)))));
    return absl::OkStatus();
  }
  if (WIFEXITED(wstatus)) {
    return absl::InternalError(absl::StrCat("command \"", options_.command, "\" exited with status ",
                                            WEXITSTATUS(wstatus)));
  }
  return absl::InternalError(absl::StrCat("command \"", options_.command, "\" killed by signal ",
                                          WTERMSIG(wstatus)));
}

absl::Status ApplyTrigger::PostUrl() {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Content-Type: application/json");
  if (!options_.api_key.empty()) {
    headers = curl_slist_append(headers, absl::StrCat("Hiddify-API-Key: ", options_.api_key).c_str());
  }
  std::string body;
  auto write = +[](char* data, size_t size, size_t n, void* out) -> size_t {
    auto* s = static_cast<std::string*>(out);
    if (s->size() < 4096) s->append(data, size * n);
    return size * n;
  };
  const std::string user_agent = absl::StrCat("hiddify-sync-reporter/", kReporterVersion);
  curl_easy_setopt(curl, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{}");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl);
  long http_status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("POST ", RedactUrl(options_.url), ": ", curl_easy_strerror(rc)));
  }
  if (http_status < 200 || http_status >= 300) {
    return absl::InternalError(absl::StrCat("POST ", RedactUrl(options_.url), ": HTTP ", http_status, " ",
                                            body.substr(0, 200)));
  }
  LogDebug(absl::StrCat("apply: POST ", RedactUrl(options_.url), " -> HTTP ", http_status));
  return absl::OkStatus();
}

}  // namespace hsync::reporter
