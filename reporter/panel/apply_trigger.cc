#include "reporter/panel/apply_trigger.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "reporter/util/backoff.h"

extern char** environ;

namespace hsync::reporter {

ApplyTrigger::ApplyTrigger(ApplyTriggerOptions options, MariaDbOptions db,
                           const CoreSyncQueue* queue, StatusBoard* board)
    : options_(std::move(options)), db_(std::move(db)), queue_(queue), board_(board) {}

ApplyTrigger::~ApplyTrigger() { Stop(); }

void ApplyTrigger::Start() {
  if (!enabled() || thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    // A run owed from before a restart: check at once.
    pending_ = true;
    due_at_ = first_request_at_ = absl::Now();
  }
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
  const absl::Time now = absl::Now();
  if (!pending_) {
    pending_ = true;
    first_request_at_ = now;
    due_at_ = now + options_.debounce;
  } else {
    // Slide with the burst, bounded by max_delay from the first request.
    due_at_ = std::max(due_at_, std::min(now + options_.debounce,
                                         first_request_at_ + options_.max_delay));
  }
  board_->Update([](auto& r) { r.set_apply_pending(true); });
}

void ApplyTrigger::Loop() {
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
    const absl::Time again = Step();
    if (again == absl::InfiniteFuture()) continue;
    absl::MutexLock lock(&mu_);
    if (!pending_) {
      pending_ = true;
      first_request_at_ = absl::Now();
      due_at_ = again;
    } else {
      due_at_ = std::min(due_at_, again);
    }
  }
}

absl::Time ApplyTrigger::Step() {
  Backoff backoff(options_.retry_initial, options_.retry_max);
  for (int i = 0; i < failures_; ++i) backoff.Next();
  auto failed = [&](const std::string& message) {
    LogError(message);
    board_->RecordError(message);
    board_->Update([](auto& r) {
      r.set_apply_failures(r.apply_failures() + 1);
      r.set_apply_pending(true);
    });
    ++failures_;
    return absl::Now() + backoff.Next();
  };
  auto conn = db_.Get();
  if (!conn.ok()) return failed(absl::StrCat("apply: ", conn.status().message()));
  auto generations = queue_->ReadApply(**conn);
  if (!generations.ok()) {
    db_.Check(generations.status());
    return failed(absl::StrCat("apply: ", generations.status().message()));
  }
  board_->Update([&](auto& r) {
    r.set_apply_generation_wanted(generations->wanted);
    r.set_apply_generation_done(generations->done);
  });
  if (generations->wanted <= generations->done) {
    absl::MutexLock lock(&mu_);
    const bool more = pending_;
    board_->Update([more](auto& r) { r.set_apply_pending(more); });
    return absl::InfiniteFuture();
  }
  const uint64_t covers = generations->wanted;  // read before the run starts
  const absl::Time started = absl::Now();
  absl::StatusOr<int> exit_code = RunOnce();
  if (!exit_code.ok()) return failed(absl::StrCat("apply: ", exit_code.status().message()));
  if (*exit_code == kApplyBusyExitCode) {
    LogInfo(absl::StrCat("apply: \"", options_.command, "\" exited ", kApplyBusyExitCode,
                         " (another run is active); retrying in ",
                         absl::FormatDuration(options_.busy_retry)));
    board_->Update([](auto& r) {
      r.set_apply_busy_retries(r.apply_busy_retries() + 1);
      r.set_apply_pending(true);
    });
    return absl::Now() + options_.busy_retry;
  }
  if (*exit_code != 0) {
    return failed(absl::StrCat("apply: command \"", options_.command, "\" exited with status ",
                               *exit_code));
  }
  failures_ = 0;
  LogInfo(absl::StrCat("apply: \"", options_.command, "\" succeeded in ",
                       absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Milliseconds(1))),
                       " (generation ", covers, ")"));
  board_->Update([](auto& r) { r.set_apply_runs(r.apply_runs() + 1); });
  if (absl::Status marked = queue_->MarkApplied(**conn, covers); !marked.ok()) {
    db_.Check(marked);
    // The run happened; recording it failed: one extra run later, nothing lost.
    return failed(absl::StrCat("apply: recording the run: ", marked.message()));
  }
  board_->Update([covers](auto& r) { r.set_apply_generation_done(covers); });
  // Changes completed during the run (wanted moved on) need a run after it.
  return absl::Now();
}

absl::StatusOr<int> ApplyTrigger::RunOnce() {
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
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  return absl::InternalError(absl::StrCat("command \"", options_.command, "\" killed by signal ",
                                          WTERMSIG(wstatus)));
}

}  // namespace hsync::reporter
