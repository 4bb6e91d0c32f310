// The seam between the applier and the parent: one thing that takes a batch
// of due users and makes the parent hold their pending bytes, exactly once
// (ARCHITECTURE.md "Exactly once" step 4). Two implementations:
// ApiParentWriter (GET + PATCH per user with a journal intent, for a hub that
// runs elsewhere) and DatabaseParentWriter (one MariaDB transaction per batch
// on the parent's own database, for a hub on the parent server).
//
// A writer records in the journal what it did: applied bytes are subtracted
// from pending, bytes of users the parent does not know are orphaned, and
// whatever a crash or a failed write left undecided is recorded so that
// Settle() can decide it later. Writers are used by one thread at a time (the
// applier's cycle lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/journal/journal.h"

namespace hsync::hub {

// Requests made to the parent's API (for ApplierStats; 0 in database mode
// except the core-sync PATCHes, which are counted elsewhere).
struct ParentCallTally {
  uint64_t gets = 0;
  uint64_t patches = 0;
  uint64_t patch_failures = 0;
};

// What happened to one user in a Settle() or Write() call.
struct UserWriteResult {
  enum class Outcome {
    kApplied,      // the bytes are on the parent and subtracted from pending
    kOrphaned,     // the parent does not know the user: bytes moved to the orphans
    kResolved,     // (Settle) an earlier write was decided and recorded in the journal
    kUnresolved,   // (Settle) still undecided: the user must not be written yet
    kParentError,  // the parent failed for this user; the journal is consistent
  };
  std::string uuid;
  Outcome outcome = Outcome::kApplied;
  absl::Status status;  // the error, for kParentError
  uint64_t bytes = 0;   // the pending bytes concerned
  // The user as the parent holds it after our write, when the writer knows it
  // (the API's answer to the PATCH, or the row read in the same transaction).
  std::optional<hiddify_sync::v1::User> user_after;
  absl::Duration took;  // time spent on this user (a batch's users share its time)
};

// The result of one Settle() or Write() call: per-user results in the order
// they happened. A journal error ends the call (the applier stops its cycle);
// the results before it still count.
struct WriterPass {
  std::vector<UserWriteResult> users;
  absl::Status journal_error;
  // The parent failed as a whole (e.g. its database is down or refused the
  // batch's transaction): nothing of the failed part was written, the journal
  // is consistent, all writes back off (not each user: a batch shares one fate).
  absl::Status parent_error;
  ParentCallTally calls;
};

// Says whether the applier lets the writer touch a user now (not in backoff).
using UserReadyFn = std::function<bool(const std::string& uuid)>;

class ParentWriter {
 public:
  virtual ~ParentWriter() = default;

  // Decides the writes a crash or a failed write left open (api: intents,
  // read back; database: in-doubt batches, by their id on the parent) and
  // records the outcome in the journal. Users `ready` refuses, and all users
  // after `interrupt` is set, are reported kUnresolved and left alone. Stops
  // at the first error for which IsUnreachable() holds.
  virtual WriterPass Settle(absl::Time now, const UserReadyFn& ready,
                            const std::atomic<bool>* interrupt) = 0;

  // Makes the parent hold `due`'s pending bytes (each entry as read from
  // Journal::PendingUsers(); none with an undecided earlier write). Stops
  // after the user in flight once `interrupt` is set, and at the first error
  // for which IsUnreachable() holds.
  virtual WriterPass Write(const std::vector<PendingUser>& due,
                           const std::atomic<bool>* interrupt) = 0;

  // A cheap request that tells whether the parent answers.
  virtual absl::Status Ping() = 0;

  // True for an error of this writer that means the parent did not answer at
  // all (connection refused/lost, timeout): all writes back off.
  virtual bool IsUnreachable(const absl::Status& status) const = 0;

  // True when every user written costs the parent panel real work (api: one
  // PATCH each, a re-apply of the user in the panel's proxy cores): the
  // applier then hands over one user at a time within its PATCH budget
  // (hub/apply/patch_budget.h). False = a batch is cheap (database): every
  // due user is written at once.
  virtual bool WritesCostPanelWork() const = 0;
};

}  // namespace hsync::hub
