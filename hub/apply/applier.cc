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
#include "hub/apply/pending_index.h"
#include "hub/util/backoff.h"

namespace hsync::hub {
namespace {

using Outcome = UserWriteResult::Outcome;

// With nothing to apply, the applier still pings the parent this often so
// that Stats().parent_reachable stays current.
constexpr absl::Duration kIdlePingInterval = absl::Seconds(30);

// Logs the 1st, 2nd, 4th, 8th... consecutive failure of a user, not every one.
bool WorthLogging(uint32_t failures) { return (failures & (failures - 1)) == 0; }

}  // namespace

struct Applier::Impl {
  Journal* journal;
  std::unique_ptr<ParentWriter> writer;
  ApplierHooks hooks;
  ApplierOptions options;

  // One cycle at a time (writers are single-threaded).
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
  PendingIndex index;

  Impl(Journal* j, std::unique_ptr<ParentWriter> w, ApplierHooks h, ApplierOptions o)
      : journal(j),
        writer(std::move(w)),
        hooks(std::move(h)),
        options(o),
        scheduler(ApplySchedule{o.max_apply_delay, o.urgent_margin_bytes, o.max_users_per_cycle,
                                o.urgent_horizon},
                  // The seam decides: only a writer whose every user costs the
                  // panel a PATCH is budgeted.
                  writer->WritesCostPanelWork()
                      ? std::make_unique<PatchBudget>(o.max_patches_per_minute)
                      : nullptr) {
    parent_backoff.emplace(options.backoff_initial, options.backoff_max);
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
    const bool unreachable = writer->IsUnreachable(status);
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
    if (!writer->IsUnreachable(status)) return false;
    const absl::Time next = parent_backoff->RecordFailure(now);
    LogWarning(absl::StrCat("applier: parent down, pausing applies for ",
                            absl::FormatDuration(next - now), ": ", status.message()));
    return true;
  }

  // Handles a failure of the parent as a whole (WriterPass::parent_error):
  // every write backs off.
  void HandleWriterFailure(const absl::Status& status, absl::Time now) {
    NoteParentError(status);
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      ++stats.apply_errors;
    }
    const absl::Time next = parent_backoff->RecordFailure(now);
    if (WorthLogging(parent_backoff->failures())) {
      LogWarning(absl::StrCat("applier: parent failed ", parent_backoff->failures(),
                              " time(s) in a row, pausing applies for ",
                              absl::FormatDuration(next - now), ": ", status.message()));
    }
  }

  // Settles earlier writes left open, of users not in backoff. Fills
  // `unresolved` with the users whose write is still undecided. Returns false
  // when the cycle must stop.
  absl::StatusOr<bool> SettleOpenWrites(absl::Time now, const std::atomic<bool>* interrupt,
                                        std::set<std::string>& unresolved) {
    WriterPass pass = writer->Settle(
        now, [&](const std::string& uuid) { return UserReady(uuid, now); }, interrupt);
    AddTally(pass.calls);
    bool go_on = true;
    for (const UserWriteResult& r : pass.users) {
      switch (r.outcome) {
        case Outcome::kUnresolved:
          unresolved.insert(r.uuid);
          break;
        case Outcome::kParentError:
          unresolved.insert(r.uuid);
          if (HandleParentError(r.uuid, r.bytes, r.status, now)) go_on = false;
          break;
        default:
          NoteParentAnswered();
          break;
      }
      if (r.user_after.has_value() && hooks.on_user_patched) hooks.on_user_patched(*r.user_after);
    }
    if (!pass.journal_error.ok()) return pass.journal_error;
    if (!pass.parent_error.ok()) {
      HandleWriterFailure(pass.parent_error, now);
      return false;
    }
    return go_on;
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
    ASSIGN_OR_RETURN(bool go_on, SettleOpenWrites(now, interrupt, unresolved));
    if (!go_on) return absl::OkStatus();

    ASSIGN_OR_RETURN(PendingIndexUpdate update, index.Refresh(*journal, now));
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      stats.pending_users_indexed = index.size();
      stats.pending_rows_read_last_cycle = update.rows_read;
      if (update.full) ++stats.pending_full_reads;
    }
    // A user with nothing pending and no open intent (e.g. its intent was
    // resolved as applied) has nothing left to fail: no longer listed.
    for (auto it = user_failures.begin(); it != user_failures.end();) {
      const PendingUser* p = index.Find(it->first);
      if (p != nullptr) it->second.pending_bytes = p->bytes;
      if (p == nullptr && unresolved.count(it->first) == 0) {
        it = user_failures.erase(it);
      } else {
        ++it;
      }
    }
    const std::vector<DueUser> due =
        scheduler.Plan(index, update, now, hooks.lookup_user, [&](const std::string& uuid) {
          return unresolved.count(uuid) > 0 || !UserReady(uuid, now);
        });

    // A writer whose every user costs the panel a PATCH gets the due users one
    // at a time, each only with the budget's leave; a cheap one gets them all.
    bool patched_any = false;
    size_t next = 0;
    while (next < due.size()) {
      if (interrupt != nullptr && interrupt->load()) break;  // Stop(): the write in flight is done
      std::vector<PendingUser> batch;
      if (scheduler.budgeted()) {
        if (!scheduler.TakeWrite(clock(), due.size() - next)) break;  // budget spent: next cycles
        batch.push_back(due[next++].pending);
      } else {
        for (; next < due.size(); ++next) batch.push_back(due[next].pending);
      }
      WriterPass pass = writer->Write(batch, interrupt);
      AddTally(pass.calls);
      bool unreachable = false;
      for (const UserWriteResult& r : pass.users) {
        if (hooks.on_user_applied) hooks.on_user_applied(r.took, r.outcome == Outcome::kApplied);
        if (r.user_after.has_value() && hooks.on_user_patched) hooks.on_user_patched(*r.user_after);
        switch (r.outcome) {
          case Outcome::kApplied:
            patched_any = true;
            scheduler.NoteApplied(r.uuid, r.bytes);
            NoteParentAnswered();
            UserSucceeded(r.uuid);
            break;
          case Outcome::kOrphaned: {
            NoteParentAnswered();
            UserSucceeded(r.uuid);
            const bool first = orphans_logged.insert(r.uuid).second;
            Log(first ? LogLevel::kWarning : LogLevel::kDebug,
                absl::StrCat("applier: user ", r.uuid, " is unknown to the parent; ", r.bytes,
                             " bytes counted as orphaned, not retried"));
            break;
          }
          case Outcome::kParentError:
            if (HandleParentError(r.uuid, r.bytes, r.status, now)) unreachable = true;
            break;
          case Outcome::kResolved:  // not outcomes of Write()
          case Outcome::kUnresolved:
            break;
        }
      }
      if (!pass.journal_error.ok()) return pass.journal_error;
      if (!pass.parent_error.ok()) {
        HandleWriterFailure(pass.parent_error, now);
        break;
      }
      if (unreachable) break;  // the parent did not answer: all applies back off
    }
    if (patched_any) {
      std::lock_guard<std::mutex> lock(stats_mu);
      stats.last_apply_at = absl::Now();
    }
    if (due.empty() && unresolved.empty() &&
        absl::Now() - last_parent_contact > kIdlePingInterval) {
      absl::Status ping = writer->Ping();
      if (ping.ok()) {
        NoteParentAnswered();
      } else {
        NoteParentError(ping);
        if (writer->IsUnreachable(ping)) parent_backoff->RecordFailure(now);
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

Applier::Applier(Journal* journal, std::unique_ptr<ParentWriter> writer, ApplierHooks hooks,
                 ApplierOptions options)
    : impl_(std::make_unique<Impl>(journal, std::move(writer), std::move(hooks), options)) {}

Applier::~Applier() { Stop(); }

absl::Status Applier::Start() {
  {
    std::lock_guard<std::mutex> lock(impl_->run_mu);
    if (impl_->started) return absl::FailedPreconditionError("applier already started");
    impl_->started = true;
  }
  {
    // Writes left open by a crash are settled before anything else; a parent
    // that is down now only delays that (the cycles retry, and never touch a
    // user whose write is still undecided).
    std::lock_guard<std::mutex> cycle_lock(impl_->cycle_mu);
    std::set<std::string> unresolved;
    auto resolved = impl_->SettleOpenWrites(absl::Now(), nullptr, unresolved);
    if (!resolved.ok()) {
      std::lock_guard<std::mutex> lock(impl_->run_mu);
      impl_->started = false;
      return resolved.status();
    }
    if (!unresolved.empty()) {
      LogWarning(absl::StrCat("applier: ", unresolved.size(),
                              " user(s) with an open write not settled yet (parent not "
                              "answering, or too recent to judge); they wait until it is"));
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
