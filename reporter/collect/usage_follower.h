// usage_mode = "follow" (README "usage_mode"): the child's current_usage shows
// the user's total usage, i.e. the parent's current_usage (from the roster)
// plus the bytes this child carried that collect has not reported yet, so the
// child panel's own quota check (is_active, PANEL.md §3) agrees with the
// parent, and resets, renewals and admin edits of usage on the parent reach
// the child.
//
// How (ARCHITECTURE.md "Exactly once", step 1): for every user of a roster
// update, inside the roster's transaction, holding StateStore::LockMeta()
// (so collect runs before or after, never in between) and the user's row
// (FOR UPDATE), with P = the parent's value and W = the user's watermark:
//   d = P - W;  current_usage = current_usage + d;  watermark = P.
// Both move by the same d, so collect's delta (current - watermark, the
// unreported bytes) is unchanged: no byte is lost or reported twice, whatever
// the panel's usage task adds meanwhile (its adds are atomic too). d may be
// negative (a parent reset, an admin edit, or reported bytes the parent has
// not applied yet: those show again once the hub applied them).
// A local reset collect has not seen yet (current below the watermark, or
// last_reset_time moved) is resolved as collect would resolve it: the bytes
// since that reset are the unreported ones (W counts as 0).
// A user without a watermark gets one (P), so its existing counter stays
// unreported. Nothing happens while the state's baseline is pending.
//
// Only while the panel adds usage atomically (atomic_usage_probe.h): on a
// panel without add_usage_json an offset could land between the panel's read
// and its absolute write and be lost, so there the counter is left alone
// (watermark behaviour) and status says so. The panel is checked at start and
// again every `recheck` (a panel upgrade turns following on).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mariadb.h"
#include "reporter/roster/roster_usage_hook.h"
#include "reporter/state/state_store.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {

// One user's usage on the parent.
struct ParentUsage {
  std::string uuid;  // lower-case canonical
  uint64_t bytes = 0;
};

struct UsageFollowResult {
  uint64_t users_moved = 0;        // counters offset (d != 0)
  int64_t bytes_moved = 0;         // sum of the offsets
  uint64_t resets_resolved = 0;    // local resets collect had not seen yet
  uint64_t watermarks_created = 0;
};

class UsageFollower : public RosterUsageHook {
 public:
  // `store` must outlive the follower; `board` may be null (no status).
  UsageFollower(StateStore* store, std::string panel_database, StatusBoard* board,
                absl::Duration recheck = absl::Minutes(10));

  // Checks the panel for add_usage_json now; following is on while it has it.
  // Logs when the answer changes (and the first answer) and publishes it.
  absl::StatusOr<bool> CheckPanel(MariaDbConnection& conn);
  // The last answer of CheckPanel() (false before the first).
  bool following() const;

  // RosterUsageHook: re-checks the panel when due, then Follow()s the
  // update's users (skipped ones excluded) when following. An error fails
  // the roster apply.
  absl::Status AfterRosterWrites(MariaDbConnection& conn,
                                 const hiddify_sync::v1::RosterUpdate& update,
                                 const std::vector<SkippedUser>& skipped) override;

  // Inside the caller's transaction: moves each user's counter and watermark
  // as described above (users missing locally are ignored). Does not check
  // the panel: the caller decides that following is safe.
  absl::StatusOr<UsageFollowResult> Follow(MariaDbConnection& conn,
                                           const std::vector<ParentUsage>& users);

 private:
  void Publish(const UsageFollowResult* moved);

  StateStore* store_;
  std::string panel_database_;
  StatusBoard* board_;
  absl::Duration recheck_;
  mutable absl::Mutex mu_;
  bool checked_ ABSL_GUARDED_BY(mu_) = false;
  bool atomic_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time checked_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// The status note for a panel without add_usage_json.
inline constexpr char kNoAtomicUsageNote[] =
    "the panel has no add_usage_json procedure (older than v10.86.1: it adds usage by "
    "read-modify-write), so the child's counter is left alone (watermark mode): the child's own "
    "quota check judges only this child's traffic since its last reset";

}  // namespace hsync::reporter
