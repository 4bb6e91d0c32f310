// Makes the parent's own proxy cores follow users whose is_active the hub's
// database writes flipped (PANEL.md §4: a row written by SQL reaches xray
// only through the panel's API): one `PATCH {}` per user through the API, on
// its own thread, retried with backoff until the panel answers it. A user
// the parent no longer has is dropped. The queue holds each user once and is
// not durable: after a crash the panel's usage task still removes an
// over-quota user with traffic within its minute (PANEL.md §3).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hub/parent/parent_client.h"

namespace hsync::hub {

struct CoreSyncStats {
  uint64_t patches = 0;   // PATCH {} answered by the panel
  uint64_t failures = 0;  // attempts that failed (retried)
  uint64_t queued = 0;    // users waiting now
  std::string last_error;
  absl::Time last_error_at = absl::InfinitePast();
};

class CoreSyncer {
 public:
  CoreSyncer(std::unique_ptr<ParentClient> parent, absl::Duration backoff_initial,
             absl::Duration backoff_max);
  ~CoreSyncer();  // Stop()s
  CoreSyncer(const CoreSyncer&) = delete;
  CoreSyncer& operator=(const CoreSyncer&) = delete;

  void Start();
  // Queues one PATCH {} for the user (once, however often it is asked for).
  void Enqueue(const std::string& uuid);
  // Ends the thread after the request in flight; what is queued is dropped.
  void Stop();
  CoreSyncStats Stats() const;

 private:
  void Run();

  std::unique_ptr<ParentClient> parent_;
  const absl::Duration backoff_initial_;
  const absl::Duration backoff_max_;
  mutable absl::Mutex mu_;
  std::set<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  CoreSyncStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace hsync::hub
