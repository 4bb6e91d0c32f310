// Makes the child's `user` table follow the parent's roster (ARCHITECTURE.md
// "The roster"). Each RosterUpdate is applied in ONE MariaDB transaction:
//   - upserts: users missing locally are created with the parent's exact uuid
//     and keys, empty username/password, added_by = the local owner admin, and
//     every NOT NULL column given (the table has no SQL defaults); existing
//     users get every synced field (name, usage_limit, package_days, mode,
//     comment, start_date, last_reset_time, telegram_id, lang, the five keys)
//     and enable := the parent's is_active. Only rows that differ are written.
//   - full = true: local users absent from the roster are removed per policy
//     (disable: enable = 0; delete: DELETE); full = false: removed_uuids are.
//   - the mass-removal guard (PANEL.md §5) judges the removals of every update,
//     full or delta, and trips when
//       * a full roster is empty while local users exist,
//       * a delta without upserts would remove every local user still
//         removable (enabled ones with the disable policy, every row with
//         delete) that is not held already, i.e. leave the child empty, or
//       * more than max(guard_min, guard_fraction x local users) would go.
//     A trip removes nobody and persists the users it held back
//     (HeldRemovals) with its reason; the rest of the update is still
//     applied. Held users are not judged again: a later roster that still
//     lacks them neither removes them nor trips for them (they stay held);
//     only the removals it adds are judged. A held user is dropped from the
//     held set when it reappears on the parent (any upsert of its uuid), and
//     by a full roster when there is nothing left to remove (its row is gone,
//     or already disabled). `approve-removals` removes the held users.
//   - a user whose fields the local table cannot hold (bad mode, malformed
//     date, oversized key...) or whose row the database refuses (a trigger, a
//     narrower column, a constraint) is skipped with its reason and otherwise
//     left as it is; the rest of the update is applied in the same
//     transaction, and the user is tried again by the next update carrying it.
//     A skipped user never counts as absent.
//   - core changes (with options.core_changes): every user whose proxy-core
//     membership must change -- created enabled, enable flipped, keys or the
//     fields that decide is_active changed, removed -- is recorded in the
//     core-sync queue in the same transaction (CoreSyncQueue). With the delete
//     policy the row is then disabled here and deleted through the panel's
//     API by the core syncer (the API cannot remove a user whose row is gone).
//   - users created here get what the panel's insert hook gives them: a
//     generated username (PanelUsername()).
// Never written by the applier itself: current_usage (only the usage hook
// moves it, by exact offsets), id, password, max_ips (and last_online and
// username of existing users).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mariadb.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "reporter/panel/core_sync_queue.h"
#include "reporter/roster/held_removals.h"
#include "reporter/config/reporter_config.h"
#include "reporter/roster/roster_savepoint.h"
#include "reporter/roster/roster_usage_hook.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

struct RosterApplyOptions {
  std::string panel_database = "hiddifypanel";
  RemovePolicy remove_policy = RemovePolicy::kDisable;
  int64_t guard_min = 10;
  double guard_fraction = 0.25;
  const CoreSyncQueue* core_changes = nullptr;  // records core changes; null = none
};

struct RosterApplyResult {
  uint64_t created = 0;
  uint64_t updated = 0;
  uint64_t disabled = 0;
  uint64_t removed = 0;
  uint64_t unchanged = 0;
  bool guard_tripped = false;
  std::string guard_reason;        // set when the guard tripped
  uint64_t held = 0;               // users this update's trip held back
  uint64_t still_held = 0;         // absent users held back by an earlier trip
  uint64_t unheld = 0;             // users dropped from the held set
  std::vector<SkippedUser> skipped;  // not written (invalid or refused), in update order
  uint64_t core_changes = 0;  // users whose proxy cores must follow (recorded when enabled)
  bool changed() const { return created + updated + disabled + removed > 0; }
};

class RosterApplier {
 public:
  // `store` (for the watermark's last_reset_seen) must outlive the applier.
  RosterApplier(StateStore* store, RosterApplyOptions options);

  // Applies `update` in one transaction; on error nothing changed. Refused
  // rows are no error (they are in `skipped`); an error is the database or
  // the connection failing, or the panel lacking an owner admin.
  absl::StatusOr<RosterApplyResult> Apply(MariaDbConnection& conn,
                                          const hiddify_sync::v1::RosterUpdate& update);

  // The held set this applier maintains (for status).
  const HeldRemovals& held_removals() const { return held_; }

  // Runs inside every update's transaction before it commits (nullptr =
  // none); `hook` must outlive the applier. Set before the first Apply().
  void set_usage_hook(RosterUsageHook* hook) { usage_hook_ = hook; }

 private:
  StateStore* store_;
  HeldRemovals held_;
  RosterApplyOptions options_;
  RosterUsageHook* usage_hook_ = nullptr;
};

}  // namespace hsync::reporter
