// The applier's work for ONE user, against the parent and the journal:
// applying its pending bytes (GET, intent, PATCH, check, complete) and
// resolving an intent left open by a crash or a failed PATCH.
// ARCHITECTURE.md "Exactly once" steps 4-5.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/apply/parent_writer.h"
#include "hub/journal/journal.h"
#include "hub/parent/parent_client.h"

namespace hsync::hub {

struct UserStepResult {
  enum class Outcome {
    kApplied,       // bytes written to the parent and subtracted from pending
    kOrphaned,      // the parent does not know the user: bytes moved to orphans
    kResolved,      // (ResolveOpenIntent) the intent was completed or abandoned
    kDeferred,      // (ResolveOpenIntent) looks not applied, but too young to be sure: later
    kParentError,   // the parent failed; the journal is consistent (an intent may stay open)
    kJournalError,  // the journal failed: stop the cycle
  };
  Outcome outcome = Outcome::kApplied;
  absl::Status status;                            // the error for the two error outcomes
  std::optional<hiddify_sync::v1::User> patched;  // the parent's answer to our PATCH
};

// Whether an intent's PATCH happened, judged from the value the parent holds
// now. `surprising` is set when the parent moved to a third value.
bool IntentWasApplied(const ApplyIntent& intent, uint64_t parent_value, bool* surprising);

// Reads the user back and completes (PATCH happened) or abandons (it did not)
// the open intent. A user the parent no longer has (the panel's own "user not
// found", never any other 404): the intent is abandoned,
// its bytes stay pending and become orphaned by the next apply.
// "Not applied" is only trusted once the intent is `settle_time` old (at
// `now`): a PATCH sent just before a crash or a client timeout may still be
// queued in the panel and land after our read; abandoning then would apply
// the bytes twice. Younger -> kDeferred, nothing changed.
UserStepResult ResolveOpenIntent(Journal& journal, ParentClient& parent,
                                 const ApplyIntent& intent, absl::Time now,
                                 absl::Duration settle_time, ParentCallTally& tally);

// Applies the user's pending bytes: GET (fresh value), RecordIntent(read,
// min(read + bytes, cap), bytes), PATCH current_usage_GB (+ last_online when
// the children saw the user later, + package_days/start_date=today when the
// package has not started), check the answer, CompleteIntent. The panel's
// own "user not found" (ParentClient NotFound) -> orphan; a 404 from anything
// else in front of the panel is a parent error like a 5xx: nothing orphaned.
UserStepResult ApplyPendingUser(Journal& journal, ParentClient& parent,
                                const PendingUser& pending, ParentCallTally& tally);

}  // namespace hsync::hub
