#include "hub/apply/applier_user_step.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/panel_time.h"
#include "common/units.h"

namespace hsync::hub {
namespace {

using Outcome = UserStepResult::Outcome;

UserStepResult ParentError(absl::Status status) {
  return UserStepResult{Outcome::kParentError, std::move(status), std::nullopt};
}
UserStepResult JournalError(absl::Status status) {
  return UserStepResult{Outcome::kJournalError, std::move(status), std::nullopt};
}

// The children's last_online when it is later than the parent's, as the
// panel's text; nullopt when there is nothing newer to write. A child clock
// running ahead is not allowed to push last_online into the future.
std::optional<std::string> NewerLastOnline(const PendingUser& pending,
                                           const hiddify_sync::v1::User& parent_user) {
  if (pending.last_online == absl::InfinitePast()) return std::nullopt;
  const absl::TimeZone zone = PanelTimeZone();
  const absl::CivilSecond children =
      absl::ToCivilSecond(std::min(pending.last_online, absl::Now()), zone);
  auto parents = ParsePanelDateTime(parent_user.last_online());
  if (parents.ok() && *parents >= children) return std::nullopt;
  return FormatPanelDateTime(children);
}

// Moves the user's pending bytes to the orphans: the parent does not know it.
// (The applier logs it.)
UserStepResult Orphan(Journal& journal, const PendingUser& pending) {
  absl::Status status = journal.MarkOrphaned(pending.uuid, pending.bytes);
  if (!status.ok()) return JournalError(std::move(status));
  return UserStepResult{Outcome::kOrphaned, absl::OkStatus(), std::nullopt};
}

}  // namespace

bool IntentWasApplied(const ApplyIntent& intent, uint64_t parent_value, bool* surprising) {
  *surprising = false;
  if (parent_value == intent.value_written && intent.value_written != intent.value_read) {
    return true;  // our PATCH is what the parent holds
  }
  if (parent_value == intent.value_read) return false;  // the PATCH never landed
  // The parent holds a third value: someone else wrote in between (the
  // parent's own traffic task adds its local traffic, an admin edited the
  // user, a periodic reset zeroed it). We cannot know for sure, so we pick
  // the less harmful mistake given how the value can move:
  //  - parent >= value_written: usage on the panel only grows between resets,
  //    so the likely story is "our write landed, then the parent added its own
  //    traffic on top". Counting it as applied avoids charging the user twice.
  //    (It would lose our bytes only if the PATCH failed AND other traffic
  //    happened to lift the value past value_written — a much rarer case.)
  //  - parent < value_written: either our write never landed, or it landed
  //    and was lowered afterwards (reset/admin). Re-applying keeps the bytes
  //    (a child's traffic is never silently dropped); after a reset they
  //    count into the new period, which is where recent traffic belongs.
  *surprising = true;
  return parent_value >= intent.value_written;
}

UserStepResult ResolveOpenIntent(Journal& journal, ParentClient& parent,
                                 const ApplyIntent& intent, absl::Time now,
                                 absl::Duration settle_time, ParentCallTally& tally) {
  ++tally.gets;
  auto user = parent.GetUser(intent.uuid);
  if (!user.ok() && user.status().code() == absl::StatusCode::kNotFound) {
    // Gone from the parent: nothing can be applied any more. Its bytes stay
    // pending; the next apply attempt finds the 404 and orphans them.
    LogWarning(absl::StrCat("applier: user ", intent.uuid,
                            " with an open intent is gone from the parent; intent dropped"));
    absl::Status status = journal.AbandonIntent(intent.uuid);
    if (!status.ok()) return JournalError(std::move(status));
    return UserStepResult{Outcome::kResolved, absl::OkStatus(), std::nullopt};
  }
  if (!user.ok()) return ParentError(user.status());
  bool surprising = false;
  const uint64_t now_value = user->current_usage_bytes();
  const bool applied = IntentWasApplied(intent, now_value, &surprising);
  if (!applied && now - intent.created_at < settle_time) {
    return UserStepResult{Outcome::kDeferred, absl::OkStatus(), std::nullopt};
  }
  if (surprising) {
    LogWarning(absl::StrCat("applier: resolving intent of user ", intent.uuid, ": parent holds ",
                            now_value, " bytes, neither the ", intent.value_read,
                            " read nor the ", intent.value_written, " written; treated as ",
                            applied ? "applied" : "not applied"));
  }
  absl::Status status = applied ? journal.CompleteIntent(intent.uuid, intent.bytes_applied)
                                : journal.AbandonIntent(intent.uuid);
  if (!status.ok()) return JournalError(std::move(status));
  LogInfo(absl::StrCat("applier: open intent of user ", intent.uuid, " resolved as ",
                       applied ? "applied" : "not applied", " (", intent.bytes_applied,
                       " bytes)"));
  return UserStepResult{Outcome::kResolved, absl::OkStatus(), std::nullopt};
}

UserStepResult ApplyPendingUser(Journal& journal, ParentClient& parent,
                                const PendingUser& pending, ParentCallTally& tally) {
  // Read as late as possible: the PATCH follows immediately.
  ++tally.gets;
  auto user = parent.GetUser(pending.uuid);
  if (!user.ok() && user.status().code() == absl::StatusCode::kNotFound) {
    return Orphan(journal, pending);
  }
  if (!user.ok()) return ParentError(user.status());

  ApplyIntent intent;
  intent.uuid = pending.uuid;
  intent.value_read = user->current_usage_bytes();
  // The panel clamps at its cap; bytes above it cannot be stored anywhere.
  intent.value_written = intent.value_read >= kPanelMaxBytes ||
                                 pending.bytes >= kPanelMaxBytes - intent.value_read
                             ? kPanelMaxBytes
                             : intent.value_read + pending.bytes;
  intent.bytes_applied = pending.bytes;
  intent.created_at = absl::Now();

  UserPatch patch;
  patch.current_usage_bytes = intent.value_written;
  patch.last_online = NewerLastOnline(pending, *user);
  if (!user->has_start_date()) {
    // Adding usage starts the package, as the panel itself would (PANEL.md §3).
    patch.package_days = user->package_days();
    patch.start_date = FormatPanelDate(PanelToday());
  }

  absl::Status recorded = journal.RecordIntent(intent);
  if (!recorded.ok()) return JournalError(std::move(recorded));

  ++tally.patches;
  auto answer = parent.PatchUser(pending.uuid, patch);
  if (!answer.ok() && answer.status().code() == absl::StatusCode::kNotFound) {
    // Deleted between our GET and PATCH? Check before giving the bytes up.
    ++tally.gets;
    auto again = parent.GetUser(pending.uuid);
    if (!again.ok() && again.status().code() == absl::StatusCode::kNotFound) {
      absl::Status status = journal.AbandonIntent(pending.uuid);
      if (!status.ok()) return JournalError(std::move(status));
      return Orphan(journal, pending);
    }
    ++tally.patch_failures;
    return ParentError(again.ok() ? answer.status() : again.status());
  }
  if (!answer.ok()) {
    // The intent stays open: whether the PATCH landed is decided by reading
    // the user back before the next attempt.
    ++tally.patch_failures;
    return ParentError(answer.status());
  }
  if (answer->current_usage_bytes() != intent.value_written) {
    ++tally.patch_failures;
    return UserStepResult{
        Outcome::kParentError,
        absl::DataLossError(absl::StrCat("parent answered current_usage ",
                                         answer->current_usage_bytes(), " bytes after PATCH to ",
                                         intent.value_written, "; intent left for resolution")),
        std::move(*answer)};
  }
  absl::Status completed = journal.CompleteIntent(pending.uuid, pending.bytes);
  if (!completed.ok()) return JournalError(std::move(completed));
  return UserStepResult{Outcome::kApplied, absl::OkStatus(), std::move(*answer)};
}

}  // namespace hsync::hub
