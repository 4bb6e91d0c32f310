// Runs the panel's apply path for sing-box and WireGuard (default
// `/opt/hiddify-manager/install.sh apply_users --no-gui`, via /bin/sh with a
// timeout) as few times as correctness allows. What is owed is persisted in
// the state (CoreSyncQueue::ReadApply): a run is owed while the wanted
// generation (bumped when a synced change needs a run) exceeds the done one.
// A run records, on success, the wanted generation read when it STARTED, so
// a change completed after a run started is owed another run after it.
// Debounced: a run starts `debounce` after the last Request() (a burst of
// changes becomes one run), but never later than `max_delay` after the first
// request still waiting. Exit 12 (another run active, nothing done) is retried
// after `busy_retry` and counted, not an error; other failures are retried
// with backoff. At Start() an owed run (left by a crash) is picked up.
// Runs, failures, busy retries and "pending" are shown in the StatusBoard.
// Thread-safe.
#pragma once

#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "reporter/panel/core_sync_queue.h"
#include "reporter/state/db_session.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {

struct ApplyTriggerOptions {
  std::string command;  // run with /bin/sh -c; empty = disabled
  absl::Duration debounce = absl::Seconds(2);
  absl::Duration max_delay = absl::Seconds(30);
  absl::Duration busy_retry = absl::Seconds(3);
  absl::Duration timeout = absl::Minutes(5);
  absl::Duration retry_initial = absl::Seconds(2);
  absl::Duration retry_max = absl::Minutes(2);
};

// The exit code install.sh uses when another run holds its lock.
inline constexpr int kApplyBusyExitCode = 12;

class ApplyTrigger {
 public:
  // `queue` holds the generations; pointers must outlive the trigger.
  ApplyTrigger(ApplyTriggerOptions options, MariaDbOptions db, const CoreSyncQueue* queue,
               StatusBoard* board);
  ~ApplyTrigger();  // Stop()s

  void Start();
  // Lets a run in flight finish (bounded by its timeout), then returns.
  void Stop();
  // Says a run may be owed now (see above). No-op when disabled.
  void Request();
  bool enabled() const { return !options_.command.empty(); }

  // Runs the command once on the caller's thread: its exit code (0, 12, ...)
  // or an error when it could not run, timed out or was killed.
  absl::StatusOr<int> RunOnce();

 private:
  void Loop();
  // One check: runs when owed. Returns when to check again (InfiniteFuture:
  // only after the next Request()).
  absl::Time Step();

  ApplyTriggerOptions options_;
  DbSession db_;
  const CoreSyncQueue* queue_;
  StatusBoard* board_;
  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time due_at_ ABSL_GUARDED_BY(mu_);
  absl::Time first_request_at_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  int failures_ = 0;  // consecutive, loop thread only
};

}  // namespace hsync::reporter
