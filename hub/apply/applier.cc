#include "hub/apply/applier.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "hub/apply/apply_scheduler.h"
#include "hub/apply/applier_user_step.h"
#include "hub/util/backoff.h"

namespace hsync::hub {
namespace {

using Outcome = UserStepResult::Outcome;

// With nothing to apply, the applier still pings the parent this often so
// that Stats().parent_reachable stays current.
constexpr absl::Duration kIdlePingInterval = absl::Seconds(30);

// Logs the 1st, 2nd, 4th, 8th... consecutive failure of a user, not every one.
bool WorthLogging(uint32_t failures) { return (failures & (failures - 1)) == 0; }

}  // namespace

struct Applier::Impl {
  Journal* journal;
  std::unique_ptr<ParentClient> parent;
  ApplierHooks hooks;
  ApplierOptions options;

  // One cycle at a time (the ParentClient is single-threaded).
  std::mutex cycle_mu;

  // Thread control.
  std::mutex run_mu;
  std::condition_variable run_cv;
  std::atomic<bool> stop{false};
  bool started = false;
  std::thread thread;

  // Guarded by cycle_mu.
  struct UserFailure {
    Backoff backoff;
    std::string last_error;
    uint64_t pending_bytes = 0;
  };
  std::map<std::string, UserFailure> user_failures;
  std::set<std::string> orphans_logged;  // warn once per user, then debug
  std::optional<Backoff> parent_backoff;
  absl::Time last_parent_contact = absl::InfinitePast();

  // Guarded by stats_mu; copied out by Stats().
  mutable std::mutex stats_mu;
  ApplierStats stats;

  // Guarded by cycle_mu.
  ApplyScheduler scheduler;

  Impl(Journal* j, std::unique_ptr<ParentClient> p, ApplierHooks h, ApplierOptions o)
      : journal(j),
        parent(std::move(p)),
        hooks(std::move(h)),
        options(o),
        scheduler(ApplySchedule{o.max_apply_delay, o.urgent_margin_bytes, o.max_users_per_cycle,
                                o.urgent_horizon},
                  std::make_unique<PatchBudget>(o.max_patches_per_minute)) {
    parent_backoff.emplace(options.backoff_initial, options.backoff_max);
    // A PATCH can still be on its way for at least as long as the client waits for it.
    options.intent_settle_time = std::max(options.intent_settle_time,
                                          parent->options().request_timeout + absl::Seconds(5));
  }

  bool UserReady(const std::string& uuid, absl::Time now) const {
    auto it = user_failures.find(uuid);
    return it == user_failures.end() || it->second.backoff.Ready(now);
  }

  void NoteParentAnswered() {
    last_parent_contact = absl::Now();
    parent_backoff->Reset();
    std::lock_guard<std::mutex> lock(stats_mu);
    if (!stats.parent_reachable) LogInfo("applier: parent reachable");
    stats.parent_reachable = true;
  }

  void NoteParentError(const absl::Status& status) {
    const bool unreachable = IsParentTransportError(status);
    if (!unreachable) last_parent_contact = absl::Now();
    std::lock_guard<std::mutex> lock(stats_mu);
    if (unreachable && stats.parent_reachable) {
      LogWarning(absl::StrCat("applier: parent unreachable: ", status.message()));
    }
    stats.parent_reachable = !unreachable;
    stats.last_parent_error = std::string(status.message());
    stats.last_parent_error_at = absl::Now();
  }

  void AddTally(const ParentCallTally& tally) {
    std::lock_guard<std::mutex> lock(stats_mu);
    stats.gets_total += tally.gets;
    stats.patches_total += tally.patches;
    stats.patch_failures += tally.patch_failures;
  }

  void UserSucceeded(const std::string& uuid) { user_failures.erase(uuid); }

  void UserFailed(const std::string& uuid, uint64_t pending_bytes, const absl::Status& status,
                  absl::Time now) {
    auto it = user_failures.find(uuid);
    if (it == user_failures.end()) {
      it = user_failures
               .emplace(uuid, UserFailure{Backoff(options.backoff_initial, options.backoff_max),
                                          "", 0})
               .first;
    }
    UserFailure& f = it->second;
    const absl::Time next = f.backoff.RecordFailure(now);
    f.last_error = std::string(status.message());
    if (pending_bytes > 0) f.pending_bytes = pending_bytes;
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      ++stats.apply_errors;
    }
    if (WorthLogging(f.backoff.failures())) {
      LogWarning(absl::StrCat("applier: user ", uuid, " failed ", f.backoff.failures(),
                              " time(s) in a row, next attempt in ",
                              absl::FormatDuration(next - now), ": ", status.message()));
    }
  }

  // Handles a parent error of one user. Returns true when the parent is
  // unreachable and the cycle must stop.
  bool HandleParentError(const std::string& uuid, uint64_t pending_bytes,
                         const absl::Status& status, absl::Time now) {
    NoteParentError(status);
    UserFailed(uuid, pending_bytes, status, now);
    if (!IsParentTransportError(status)) return false;
    const absl::Time next = parent_backoff->RecordFailure(now);
    LogWarning(absl::StrCat("applier: parent down, pausing applies for ",
                            absl::FormatDuration(next - now), ": ", status.message()));
    return true;
  }

  // Resolves open intents of users not in backoff. Fills `unresolved` with the
  // users whose intent is still open. Returns false when the cycle must stop.
  absl::StatusOr<bool> ResolveIntents(absl::Time now, const std::atomic<bool>* interrupt,
                                      std::set<std::string>& unresolved) {
    ASSIGN_OR_RETURN(std::vector<ApplyIntent> intents, journal->OpenIntents());
    for (const ApplyIntent& intent : intents) {
      if ((interrupt != nullptr && interrupt->load()) || !UserReady(intent.uuid, now)) {
        unresolved.insert(intent.uuid);
        continue;
      }
      ParentCallTally tally;
      UserStepResult r =
          ResolveOpenIntent(*journal, *parent, intent, now, options.intent_settle_time, tally);
      AddTally(tally);
      if (r.outcome == Outcome::kJournalError) return r.status;
      if (r.outcome == Outcome::kDeferred) unresolved.insert(intent.uuid);
      if (r.outcome == Outcome::kParentError) {
        unresolved.insert(intent.uuid);
        if (HandleParentError(intent.uuid, intent.bytes_applied, r.status, now)) return false;
        continue;
      }
      NoteParentAnswered();
    }
    return true;
  }

  // Copies the failing users and the schedule into the stats (end of every cycle).
  void PublishFailures(absl::Time now) {
    ApplySchedulerStats schedule = scheduler.Stats(now);
    std::vector<FailingUserInfo> failing;
    failing.reserve(user_failures.size());
    for (const auto& [uuid, f] : user_failures) {
      failing.push_back({uuid, f.pending_bytes, f.backoff.failures(), f.last_error,
                         f.backoff.next_attempt_at()});
    }
    std::lock_guard<std::mutex> lock(stats_mu);
    stats.failing_users = std::move(failing);
    stats.schedule = schedule;
  }

  absl::Status Cycle(absl::Time now, const std::atomic<bool>* interrupt) {
    std::lock_guard<std::mutex> cycle_lock(cycle_mu);
    // The cycle's clock: `now` at its start, advancing with the wall clock
    // (the budget counts writes at the time they are sent).
    const absl::Time wall_start = absl::Now();
    auto clock = [&] { return now + (absl::Now() - wall_start); };
    struct Publisher {
      Impl* impl;
      std::function<absl::Time()> clock;
      ~Publisher() { impl->PublishFailures(clock()); }
    } publish_at_exit{this, clock};
    if (!parent_backoff->Ready(now)) return absl::OkStatus();  // parent-wide backoff

    std::set<std::string> unresolved;
    ASSIGN_OR_RETURN(bool go_on, ResolveIntents(now, interrupt, unresolved));
    if (!go_on) return absl::OkStatus();

    ASSIGN_OR_RETURN(std::vector<PendingUser> pending, journal->PendingUsers());
    std::set<std::string> with_bytes;
    for (const PendingUser& p : pending) {
      with_bytes.insert(p.uuid);
      auto it = user_failures.find(p.uuid);
      if (it != user_failures.end()) it->second.pending_bytes = p.bytes;
    }
    // A user with nothing pending and no open intent (e.g. its intent was
    // resolved as applied) has nothing left to fail: no longer listed.
    for (auto it = user_failures.begin(); it != user_failures.end();) {
      if (with_bytes.count(it->first) == 0 && unresolved.count(it->first) == 0) {
        it = user_failures.erase(it);
      } else {
        ++it;
      }
    }
    const std::vector<DueUser> due =
        scheduler.Plan(pending, now, hooks.lookup_user, [&](const std::string& uuid) {
          return unresolved.count(uuid) > 0 || !UserReady(uuid, now);
        });

    bool patched_any = false;
    bool stopped_by_parent = false;
    for (size_t i = 0; i < due.size(); ++i) {
      const DueUser& d = due[i];
      if (interrupt != nullptr && interrupt->load()) break;  // Stop(): the user in flight is done
      if (!scheduler.TakeWrite(clock(), due.size() - i)) break;  // budget spent: next cycles
      ParentCallTally tally;
      const absl::Time step_start = absl::Now();
      UserStepResult r = ApplyPendingUser(*journal, *parent, d.pending, tally);
      if (hooks.on_user_applied) {
        hooks.on_user_applied(absl::Now() - step_start, r.outcome == Outcome::kApplied);
      }
      AddTally(tally);
      if (r.patched.has_value() && hooks.on_user_patched) hooks.on_user_patched(*r.patched);
      switch (r.outcome) {
        case Outcome::kApplied:
          patched_any = true;
          scheduler.NoteApplied(d.pending.uuid, d.pending.bytes);
          NoteParentAnswered();
          UserSucceeded(d.pending.uuid);
          break;
        case Outcome::kOrphaned: {
          NoteParentAnswered();
          UserSucceeded(d.pending.uuid);
          const bool first = orphans_logged.insert(d.pending.uuid).second;
          Log(first ? LogLevel::kWarning : LogLevel::kDebug,
              absl::StrCat("applier: user ", d.pending.uuid, " is unknown to the parent; ",
                           d.pending.bytes, " bytes counted as orphaned, not retried"));
          break;
        }
        case Outcome::kJournalError:
          return r.status;
        case Outcome::kParentError:
          stopped_by_parent = HandleParentError(d.pending.uuid, d.pending.bytes, r.status, now);
          break;
        case Outcome::kResolved:  // not outcomes of ApplyPendingUser
        case Outcome::kDeferred:
          break;
      }
      if (stopped_by_parent) break;
    }
    if (patched_any) {
      std::lock_guard<std::mutex> lock(stats_mu);
      stats.last_apply_at = absl::Now();
    }
    if (due.empty() && unresolved.empty() &&
        absl::Now() - last_parent_contact > kIdlePingInterval) {
      absl::Status ping = parent->Ping();
      if (ping.ok()) {
        NoteParentAnswered();
      } else {
        NoteParentError(ping);
        if (IsParentTransportError(ping)) parent_backoff->RecordFailure(now);
      }
    }
    return absl::OkStatus();
  }

  void Loop() {
    absl::Status last_error;
    while (!stop.load()) {
      absl::Status status = Cycle(absl::Now(), &stop);
      if (!status.ok() && status != last_error) {
        LogError(absl::StrCat("applier: cycle failed: ", status.ToString()));
      }
      last_error = status;
      std::unique_lock<std::mutex> lock(run_mu);
      run_cv.wait_for(lock, absl::ToChronoNanoseconds(options.cycle_interval),
                      [&] { return stop.load(); });
    }
  }
};

Applier::Applier(Journal* journal, std::unique_ptr<ParentClient> parent, ApplierHooks hooks,
                 ApplierOptions options)
    : impl_(std::make_unique<Impl>(journal, std::move(parent), std::move(hooks), options)) {}

Applier::~Applier() { Stop(); }

absl::Status Applier::Start() {
  {
    std::lock_guard<std::mutex> lock(impl_->run_mu);
    if (impl_->started) return absl::FailedPreconditionError("applier already started");
    impl_->started = true;
  }
  {
    // Intents left by a crash are resolved before anything else; a parent
    // that is down now only delays that (the cycles retry, and never touch a
    // user whose intent is still open).
    std::lock_guard<std::mutex> cycle_lock(impl_->cycle_mu);
    std::set<std::string> unresolved;
    auto resolved = impl_->ResolveIntents(absl::Now(), nullptr, unresolved);
    if (!resolved.ok()) {
      std::lock_guard<std::mutex> lock(impl_->run_mu);
      impl_->started = false;
      return resolved.status();
    }
    if (!unresolved.empty()) {
      LogWarning(absl::StrCat("applier: ", unresolved.size(),
                              " open intent(s) not resolved yet (parent not answering, or too "
                              "recent to judge); their users wait until they are"));
    }
  }
  impl_->stop = false;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Loop(); });
  return absl::OkStatus();
}

void Applier::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->run_mu);
    impl_->stop = true;
  }
  impl_->run_cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

absl::Status Applier::RunOneCycle(absl::Time now) { return impl_->Cycle(now, nullptr); }

ApplierStats Applier::Stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  ApplierStats out = impl_->stats;
  return out;
}

}  // namespace hsync::hub
