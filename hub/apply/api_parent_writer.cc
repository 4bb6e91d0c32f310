#include "hub/apply/api_parent_writer.h"

#include <algorithm>
#include <utility>

#include "hub/apply/applier_user_step.h"

namespace hsync::hub {
namespace {

using Outcome = UserWriteResult::Outcome;
using StepOutcome = UserStepResult::Outcome;

void AddCalls(ParentCallTally& into, const ParentCallTally& tally) {
  into.gets += tally.gets;
  into.patches += tally.patches;
  into.patch_failures += tally.patch_failures;
}

}  // namespace

ApiParentWriter::ApiParentWriter(Journal* journal, std::unique_ptr<ParentClient> parent,
                                 absl::Duration intent_settle_time)
    : journal_(journal),
      parent_(std::move(parent)),
      // A PATCH can still be on its way for at least as long as the client waits for it.
      settle_time_(std::max(intent_settle_time,
                            parent_->options().request_timeout + absl::Seconds(5))) {}

WriterPass ApiParentWriter::Settle(absl::Time now, const UserReadyFn& ready,
                                   const std::atomic<bool>* interrupt) {
  WriterPass pass;
  absl::StatusOr<std::vector<ApplyIntent>> intents = journal_->OpenIntents();
  if (!intents.ok()) {
    pass.journal_error = intents.status();
    return pass;
  }
  for (const ApplyIntent& intent : *intents) {
    UserWriteResult result;
    result.uuid = intent.uuid;
    result.bytes = intent.bytes_applied;
    if ((interrupt != nullptr && interrupt->load()) || (ready && !ready(intent.uuid))) {
      result.outcome = Outcome::kUnresolved;
      pass.users.push_back(std::move(result));
      continue;
    }
    ParentCallTally tally;
    const absl::Time start = absl::Now();
    UserStepResult r = ResolveOpenIntent(*journal_, *parent_, intent, now, settle_time_, tally);
    AddCalls(pass.calls, tally);
    result.took = absl::Now() - start;
    switch (r.outcome) {
      case StepOutcome::kJournalError:
        pass.journal_error = r.status;
        return pass;
      case StepOutcome::kDeferred:
        result.outcome = Outcome::kUnresolved;
        break;
      case StepOutcome::kParentError:
        result.outcome = Outcome::kParentError;
        result.status = r.status;
        break;
      default:
        result.outcome = Outcome::kResolved;
        break;
    }
    const bool stop = result.outcome == Outcome::kParentError && IsUnreachable(result.status);
    pass.users.push_back(std::move(result));
    if (stop) break;
  }
  return pass;
}

WriterPass ApiParentWriter::Write(const std::vector<PendingUser>& due,
                                  const std::atomic<bool>* interrupt) {
  WriterPass pass;
  for (const PendingUser& pending : due) {
    if (interrupt != nullptr && interrupt->load()) break;  // Stop(): the user in flight is done
    ParentCallTally tally;
    const absl::Time start = absl::Now();
    UserStepResult r = ApplyPendingUser(*journal_, *parent_, pending, tally);
    AddCalls(pass.calls, tally);
    UserWriteResult result;
    result.uuid = pending.uuid;
    result.bytes = pending.bytes;
    result.took = absl::Now() - start;
    result.user_after = std::move(r.patched);
    switch (r.outcome) {
      case StepOutcome::kApplied:
        result.outcome = Outcome::kApplied;
        break;
      case StepOutcome::kOrphaned:
        result.outcome = Outcome::kOrphaned;
        break;
      case StepOutcome::kJournalError:
        pass.journal_error = r.status;
        return pass;
      default:  // kParentError (kResolved/kDeferred are not outcomes of ApplyPendingUser)
        result.outcome = Outcome::kParentError;
        result.status = r.status;
        break;
    }
    const bool stop = result.outcome == Outcome::kParentError && IsUnreachable(result.status);
    pass.users.push_back(std::move(result));
    if (stop) break;
  }
  return pass;
}

absl::Status ApiParentWriter::Ping() { return parent_->Ping(); }

bool ApiParentWriter::IsUnreachable(const absl::Status& status) const {
  return IsParentTransportError(status);
}

}  // namespace hsync::hub
