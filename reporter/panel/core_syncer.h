// Drains the core-sync queue (CoreSyncQueue): for each due user, asks the
// CoreSyncClient to make the proxy cores follow (PATCH {}, or DELETE for the
// delete policy), then deletes the row; a failed call is retried with
// exponential backoff per user (nothing is dropped; a panel outage only
// delays). A 404 on PATCH is done when the user's row is gone (nothing left
// to follow), a 404 on DELETE is done always. Completed changes that need an
// apply run wake the ApplyTrigger. Wakes on Wake() (after a roster
// transaction), at the next due retry, and at least every `poll`. Own thread
// and MariaDB connection; counts and errors go to the StatusBoard.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "reporter/panel/apply_trigger.h"
#include "reporter/panel/core_sync_client.h"
#include "reporter/panel/core_sync_queue.h"
#include "reporter/state/db_session.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {

struct CoreSyncerOptions {
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(1);
  absl::Duration poll = absl::Seconds(5);
};

class CoreSyncer {
 public:
  // Pointers must outlive the syncer; `trigger` may be null.
  CoreSyncer(MariaDbOptions db, const CoreSyncQueue* queue, std::unique_ptr<CoreSyncClient> client,
             ApplyTrigger* trigger, StatusBoard* board, CoreSyncerOptions options);
  ~CoreSyncer();  // Stop()s

  void Start();
  // A call in flight finishes (bounded by the client's timeout) first.
  void Stop();
  // New rows may be due: drain now.
  void Wake();

 private:
  void Loop();
  // Syncs every due row once; returns when the next row is due.
  absl::StatusOr<absl::Time> DrainOnce(MariaDbConnection& conn);
  absl::Duration RetryDelay(uint32_t attempts) const;
  void PublishStats(MariaDbConnection& conn);

  DbSession db_;
  const CoreSyncQueue* queue_;
  std::unique_ptr<CoreSyncClient> client_;
  ApplyTrigger* trigger_;
  StatusBoard* board_;
  CoreSyncerOptions options_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  std::string last_logged_error_;
};

}  // namespace hsync::reporter
