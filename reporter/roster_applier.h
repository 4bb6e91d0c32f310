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
//   - the mass-removal guard (PANEL.md §4) skips removals, with a reason, when
//     the roster is empty while local users exist, or when more than
//     max(guard_min, guard_fraction x local users) would go; the rest of the
//     update is still applied.
// Never written: current_usage, id, username, password, max_ips (and
// last_online of existing users). A user whose fields the local table cannot
// hold (bad mode, malformed date, oversized key...) is skipped with an error
// message and otherwise left as it is; it never counts as absent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mariadb.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "reporter/reporter_config.h"
#include "reporter/state_store.h"

namespace hsync::reporter {

struct RosterApplyOptions {
  std::string panel_database = "hiddifypanel";
  RemovePolicy remove_policy = RemovePolicy::kDisable;
  int64_t guard_min = 10;
  double guard_fraction = 0.25;
};

struct RosterApplyResult {
  uint64_t created = 0;
  uint64_t updated = 0;
  uint64_t disabled = 0;
  uint64_t removed = 0;
  uint64_t unchanged = 0;
  bool guard_tripped = false;
  std::string guard_reason;              // set when the guard tripped
  std::vector<std::string> rejected;     // "<uuid>: <why>" for skipped users
  bool changed() const { return created + updated + disabled + removed > 0; }
};

class RosterApplier {
 public:
  // `store` (for the watermark's last_reset_seen) must outlive the applier.
  RosterApplier(StateStore* store, RosterApplyOptions options);

  // Applies `update` in one transaction; on error nothing changed.
  absl::StatusOr<RosterApplyResult> Apply(MariaDbConnection& conn,
                                          const hiddify_sync::v1::RosterUpdate& update);

 private:
  StateStore* store_;
  RosterApplyOptions options_;
};

}  // namespace hsync::reporter
