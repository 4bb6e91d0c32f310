// The core-sync queue: which users' proxy-core membership must still be made
// to follow their row through the child panel's API, and how many apply runs
// (install.sh apply_users) are owed, persisted in the reporter's state schema
// (tables core_sync and core_apply, reporter/state/core_sync_tables.h).
//
// Record() runs inside the roster transaction that made the change, so a
// crash can never lose one. A row is deleted only by Complete(), after the
// panel accepted the call, and only if no newer change of that user arrived
// meanwhile (its version is unchanged); completing a row that needs an apply
// run bumps core_apply.wanted_generation in the same transaction, so a crash
// between the sync and the run still leaves the run owed.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mariadb.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

enum class CoreAction {
  kSync,    // PATCH {}: the panel's drivers follow the row (add if active, else remove)
  kDelete,  // DELETE through the API: removed from every core, the row goes
};

struct CoreChange {
  std::string uuid;  // lower case
  CoreAction action = CoreAction::kSync;
  bool needs_apply = false;  // sing-box / WireGuard must re-render after it
};

struct CoreSyncRow {
  std::string uuid;
  CoreAction action = CoreAction::kSync;
  bool needs_apply = false;
  uint64_t version = 0;
  uint32_t attempts = 0;
  absl::Time queued_at;
};

struct CoreSyncStats {
  uint64_t pending = 0;
  absl::Time oldest_at = absl::InfinitePast();  // InfinitePast when empty
};

struct ApplyGenerations {
  uint64_t wanted = 0;  // bumped once per completed change that needs a run
  uint64_t done = 0;    // the wanted value read when the last successful run started
};

class CoreSyncQueue {
 public:
  // `store` must outlive the queue; `panel_database` is the panel's schema.
  CoreSyncQueue(StateStore* store, std::string panel_database);

  // Inside the caller's transaction: queues `changes` (a user already queued
  // takes the newest action, keeps needs_apply if either needs it, its
  // version moves on and it is due at once).
  absl::Status Record(MariaDbConnection& conn, const std::vector<CoreChange>& changes,
                      absl::Time now) const;
  // Users queued for deletion (inside the caller's transaction, locked).
  absl::StatusOr<std::unordered_set<std::string>> PendingDeletes(MariaDbConnection& conn) const;

  // Up to `limit` rows due at `now`, oldest first.
  absl::StatusOr<std::vector<CoreSyncRow>> Due(MariaDbConnection& conn, absl::Time now,
                                               size_t limit) const;
  // The earliest next try of any row (InfiniteFuture when empty).
  absl::StatusOr<absl::Time> NextDue(MariaDbConnection& conn) const;
  // In a transaction of its own: `row` is done. False when a newer change of
  // the user arrived meanwhile (the row stays, due at once). For a deletion
  // the user's watermark goes too (when its panel row is gone).
  absl::StatusOr<bool> Complete(MariaDbConnection& conn, const CoreSyncRow& row) const;
  // Counts a failed attempt and sets the next try (unless a newer change came).
  absl::Status Postpone(MariaDbConnection& conn, const CoreSyncRow& row, absl::Time next_try,
                        const std::string& error) const;
  absl::StatusOr<CoreSyncStats> Stats(MariaDbConnection& conn) const;

  absl::StatusOr<ApplyGenerations> ReadApply(MariaDbConnection& conn) const;
  // A run that started when wanted was `generation` succeeded.
  absl::Status MarkApplied(MariaDbConnection& conn, uint64_t generation) const;

  // Whether the panel still has a row for `uuid`.
  absl::StatusOr<bool> UserRowExists(MariaDbConnection& conn, const std::string& uuid) const;

 private:
  StateStore* store_;
  std::string panel_database_;
};

}  // namespace hsync::reporter
