// The removals the mass-removal guard held back, persisted in the reporter's
// state schema (tables held_removal and held_removal_trip, created by
// StateStore::EnsureSchema) until an operator approves them with
// `hiddify-sync-reporter approve-removals` or the users reappear on the parent.
//
//   held_removal_trip  one row per guard trip: when, roster version, reason;
//   held_removal       one row per held user (uuid), pointing at the trip that
//                      held it back.
//
// Every function works on the caller's connection and inside the caller's
// transaction, if any. Lock order, shared by the roster applier and the
// approve command so that they never deadlock: user rows, then meta, then
// these tables.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mariadb.h"
#include "hiddify_sync/v1/reporter_status.pb.h"
#include "reporter/state/state_store.h"

namespace hsync::reporter {

struct HeldRemovalSummary {
  uint64_t count = 0;
  std::string reason;                        // of the newest trip still holding users
  absl::Time since = absl::InfinitePast();   // when the oldest held user was held
};

// A held user as the approve command shows it (joined with the panel's user
// table; `exists` false when the row is gone).
struct HeldUser {
  std::string uuid;
  bool exists = false;
  int64_t id = 0;
  std::string name;
  bool enabled = false;
  absl::Time held_at;
};

class HeldRemovals {
 public:
  // `store` must outlive this object.
  explicit HeldRemovals(const StateStore* store) : store_(store) {}

  // The held uuids (lower case), locking their rows (FOR UPDATE).
  absl::StatusOr<std::unordered_set<std::string>> LockAll(MariaDbConnection& conn) const;
  // Records one guard trip holding back `uuids` (already lower case, none held yet).
  absl::Status Hold(MariaDbConnection& conn, const std::vector<std::string>& uuids,
                    uint64_t roster_version, const std::string& reason, absl::Time now) const;
  // Forgets `uuids` (and trips that no longer hold anyone).
  absl::Status Drop(MariaDbConnection& conn, const std::vector<std::string>& uuids) const;
  absl::StatusOr<HeldRemovalSummary> Summary(MariaDbConnection& conn) const;
  // Every held user with its local row (if any) from `user_table`, by uuid.
  absl::StatusOr<std::vector<HeldUser>> List(MariaDbConnection& conn,
                                             const std::string& user_table) const;

 private:
  const StateStore* store_;
};

// Copies `summary` into the held_removals* fields of a status reply.
void ShowHeldRemovals(const HeldRemovalSummary& summary,
                      hiddify_sync::v1::ReporterStatusReply& reply);

}  // namespace hsync::reporter
