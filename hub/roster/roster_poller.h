// Reads the parent's user list (from a RosterSource: the API's list or the
// panel's database) at start and every poll interval, and makes the
// RosterStore equal to it; a source that knows nothing changed only marks
// the roster fresh. A failed or garbage read publishes nothing
// (the roster keeps its last good state) and is recorded for GetStatus.
// A list element the hub cannot read is left out of that one read: the
// other users are published, the unreadable one keeps the entry it had (it
// is never published as removed) and is listed in skipped_users; one log
// line when a user becomes skipped or its cause (the failing field)
// changes, one when it is readable again.
// The wait between reads is paced to the parent (hub/roster/list_pacer.h):
// the configured poll interval, longer while a read is slow to answer.
// The source streams users one by one into a RosterStore::Replacement
// (memory of the changes, not of the list). Between reads the thread also
// publishes the store's coalesced usage changes when due (every second).
// Owns its source (used only by the poller thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hub/parent/parent_client.h"
#include "hub/roster/list_pacer.h"
#include "hub/roster/roster_source.h"
#include "hub/roster/roster_store.h"

namespace hsync::hub {

struct RosterPollerState {
  uint64_t polls = 0;
  uint64_t failures = 0;
  absl::Time last_attempt_at = absl::InfinitePast();
  absl::Time last_success_at = absl::InfinitePast();
  bool last_ok = false;
  std::string last_error;  // of the last failed read; kept after a success
  absl::Time last_error_at = absl::InfinitePast();
  // Elements left out of the last successful read (kept after a failed one).
  std::vector<SkippedPanelUser> skipped_users;
  // Pacing: how long the last read took (good or failed) and the wait
  // before the next one (>= the configured poll interval).
  absl::Duration last_list_duration = absl::ZeroDuration();
  absl::Duration effective_interval = absl::ZeroDuration();
};

class RosterPoller {
 public:
  RosterPoller(std::unique_ptr<RosterSource> source, RosterStore* store, ListPacing pacing);
  ~RosterPoller();  // Stop()s
  RosterPoller(const RosterPoller&) = delete;
  RosterPoller& operator=(const RosterPoller&) = delete;

  // Starts the thread: one read now, then one every (paced) interval.
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
  // Feeds the pacer with one read's duration (and logs big interval changes).
  void RecordReadTime(absl::Duration took) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs users that became skipped, changed cause or became readable again.
  void LogSkippedChanges(const std::vector<SkippedPanelUser>& skipped);

  std::unique_ptr<RosterSource> source_;
  RosterStore* store_;

  mutable absl::Mutex mu_;
  RosterPollerState state_ ABSL_GUARDED_BY(mu_);
  ListPacer pacer_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool poll_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  // uuid -> cause (failing field) of the users skipped by the last good read;
  // poller thread only.
  std::map<std::string, std::string> skipped_causes_;
};

}  // namespace hsync::hub
