// Makes the child panel pick up user changes: after a roster transaction that
// changed users, runs the panel's apply path ONCE (not per user), either a
// command (default `/opt/hiddify-manager/install.sh apply_users --no-gui`, run
// via /bin/sh with a timeout) or an HTTP POST to a local URL.
// Debounced: a run starts `debounce` after the first request that found no run
// pending; requests arriving meanwhile (or during a run) are merged into it or
// the next one. A failed run is retried with backoff until it succeeds.
// Runs, failures and "pending" are shown in the StatusBoard. Thread-safe.
#pragma once

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {

struct ApplyTriggerOptions {
  std::string command;  // run with /bin/sh -c; empty and url empty = disabled
  std::string url;      // POSTed to when set
  std::string api_key;  // sent as Hiddify-API-Key with url; a secret
  absl::Duration debounce = absl::Seconds(2);
  absl::Duration timeout = absl::Minutes(5);
  absl::Duration retry_initial = absl::Seconds(2);
  absl::Duration retry_max = absl::Minutes(2);
};

class ApplyTrigger {
 public:
  ApplyTrigger(ApplyTriggerOptions options, StatusBoard* board);
  ~ApplyTrigger();  // Stop()s

  void Start();
  // Lets a run in flight finish (bounded by its timeout), then returns.
  void Stop();
  // Asks for one run (see above). No-op when disabled.
  void Request();
  bool enabled() const { return !options_.command.empty() || !options_.url.empty(); }

  // Runs the apply path once on the caller's thread.
  absl::Status RunOnce();

 private:
  void Loop();
  absl::Status RunCommand();
  absl::Status PostUrl();

  ApplyTriggerOptions options_;
  StatusBoard* board_;
  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time due_at_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace hsync::reporter
