// The applier's in-memory view of the journal's pending users (issue 13):
// each user's pending row, the users by age (oldest bytes first) and the
// users currently judged urgent. Kept current from the journal's list of
// changed users (Journal::TakeChangedPendingUsers), so a refresh reads only
// the rows that changed, not every pending row. The journal stays the truth:
// the first refresh, and one every `full_read_interval` after, re-reads every
// pending row, so a change whose notice was lost (or a failed read) strands
// nobody's bytes for longer than that. Not thread-safe (the applier's cycle).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hub/apply/urgency_ranker.h"
#include "hub/journal/journal.h"

namespace hsync::hub {

// What one refresh changed in the view.
struct PendingIndexUpdate {
  // Users whose row is new or differs, and users that left (bytes 0); also
  // after a full read, only those (a notice that was lost shows up here).
  std::vector<PendingUser> changed;
  bool full = false;      // every pending row was read (urgency is judged for everyone then)
  size_t rows_read = 0;   // pending rows the refresh asked the journal for
};

class PendingIndex {
 public:
  explicit PendingIndex(absl::Duration full_read_interval = absl::Minutes(5));

  // Brings the view up to date with `journal` at `now`: every row on the
  // first call, after a failed refresh and once full_read_interval passed
  // since the last full read; otherwise only the rows of the users changed
  // since the previous refresh.
  absl::StatusOr<PendingIndexUpdate> Refresh(Journal& journal, absl::Time now);
  // In memory: the pending users are exactly `all` (what a full read does).
  PendingIndexUpdate ReplaceAll(const std::vector<PendingUser>& all);
  // In memory: the rows of `uuids` are now `rows` (a uuid without a row in
  // `rows` has nothing pending).
  PendingIndexUpdate ReplaceSome(const std::vector<std::string>& uuids,
                                 std::vector<PendingUser> rows);

  // The user's pending row, nullptr if nothing is pending for it.
  const PendingUser* Find(const std::string& uuid) const;
  size_t size() const { return users_.size(); }
  // Calls `visit` with the users oldest first (by first_pending_at, uuid)
  // until it returns false.
  void ForEachOldestFirst(const std::function<bool(const PendingUser&)>& visit) const;

  // Records the user's urgency (kept only while urgent and pending).
  void SetUrgency(const std::string& uuid, const UserUrgency& urgency);
  // The pending users last judged urgent.
  const std::map<std::string, UserUrgency>& urgent() const { return urgent_; }

 private:
  // Sets (bytes > 0) or removes the user's row; true if it changed.
  bool Put(const PendingUser& row);
  bool Remove(const std::string& uuid);

  absl::Duration full_read_interval_;
  bool full_read_due_ = true;
  absl::Time last_full_read_ = absl::InfinitePast();
  std::unordered_map<std::string, PendingUser> users_;
  // By (first_pending_at, uuid); keys and values point into users_ (whose
  // elements never move).
  std::map<std::pair<absl::Time, std::string_view>, const PendingUser*> by_age_;
  std::map<std::string, UserUrgency> urgent_;
};

}  // namespace hsync::hub
