// Reads the parent's user list at start and every poll interval, and makes
// the RosterStore equal to it. A failed or garbage read publishes nothing
// (the roster keeps its last good state) and is recorded for GetStatus.
// Owns its ParentClient (one connection, used only by the poller thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hub/parent_client.h"
#include "hub/roster_store.h"

namespace hsync::hub {

struct RosterPollerState {
  uint64_t polls = 0;
  uint64_t failures = 0;
  absl::Time last_attempt_at = absl::InfinitePast();
  absl::Time last_success_at = absl::InfinitePast();
  bool last_ok = false;
  std::string last_error;  // of the last failed read; kept after a success
  absl::Time last_error_at = absl::InfinitePast();
};

class RosterPoller {
 public:
  RosterPoller(std::unique_ptr<ParentClient> parent, RosterStore* store, absl::Duration interval);
  ~RosterPoller();  // Stop()s
  RosterPoller(const RosterPoller&) = delete;
  RosterPoller& operator=(const RosterPoller&) = delete;

  // Starts the thread: one read now, then one every interval.
  void Start();
  // Wakes the thread for a read now (no-op when not started).
  void PollSoon();
  // Ends the thread; a read in flight finishes first (bounded by the parent timeout).
  void Stop();

  // One read and publish on the caller's thread (not concurrently with the thread).
  absl::Status PollOnce();
  RosterPollerState State() const;

 private:
  void Run();

  std::unique_ptr<ParentClient> parent_;
  RosterStore* store_;
  const absl::Duration interval_;

  mutable absl::Mutex mu_;
  RosterPollerState state_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool poll_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace hsync::hub
