// The only writer of usage to the parent: one thread, applying pending
// totals per user through a ParentWriter (ARCHITECTURE.md "Exactly once"
// steps 4-5).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/apply/apply_scheduler.h"
#include "hub/journal/journal.h"
#include "hub/apply/parent_writer.h"

namespace hsync::hub {

struct ApplierOptions {
  absl::Duration cycle_interval = absl::Seconds(1);    // how often pending totals are checked
  absl::Duration max_apply_delay = absl::Seconds(60);  // a user's bytes wait at most this long
  uint64_t urgent_margin_bytes = 100ull << 20;         // within this of the quota = urgent
  absl::Duration backoff_initial = absl::Seconds(1);   // per-user and parent-wide backoff
  absl::Duration backoff_max = absl::Minutes(5);
  // (api writer) An open intent that looks "not applied" is only abandoned
  // once it is this old: its PATCH may still be queued in the panel (sent
  // just before a crash or a client timeout). ApiParentWriter uses at least
  // the ParentClient's request_timeout + 5 s.
  absl::Duration intent_settle_time = absl::Seconds(30);
  // At most this many users are PATCHed per cycle (urgent ones first), so an
  // urgent user never waits behind a huge backlog. 0 = no limit.
  size_t max_users_per_cycle = 1000;
  // A user whose recent byte rate takes it to its quota within this is
  // urgent (applied first), not only one within urgent_margin_bytes.
  absl::Duration urgent_horizon = absl::Seconds(120);
  // At most this many PATCHes per minute (and a sixth of it per 10 s):
  // hub/apply/patch_budget.h. 0 = unlimited.
  uint32_t max_patches_per_minute = 120;
};

struct FailingUserInfo {
  std::string uuid;
  uint64_t pending_bytes = 0;
  uint32_t consecutive_failures = 0;
  std::string last_error;
  absl::Time next_attempt_at;
};

struct ApplierStats {
  absl::Time last_apply_at = absl::InfinitePast();  // last cycle that PATCHed successfully
  uint64_t patches_total = 0;
  uint64_t patch_failures = 0;
  uint64_t gets_total = 0;
  uint64_t apply_errors = 0;  // failed attempts to apply or resolve one user
  // False until the parent answered once; false after a transport failure
  // (refused, reset, timeout), true again after any HTTP answer.
  bool parent_reachable = false;
  std::string last_parent_error;
  absl::Time last_parent_error_at = absl::InfinitePast();
  std::vector<FailingUserInfo> failing_users;  // users in per-user backoff (as of the last cycle)
  ApplySchedulerStats schedule;                // budget and urgency (as of the last cycle)
  uint64_t pending_users_indexed = 0;          // users with pending bytes, as the applier sees them
  // Pending rows the last cycle asked the journal for: the users whose bytes
  // changed, or every pending user on a full re-read (hub/apply/pending_index.h).
  uint64_t pending_rows_read_last_cycle = 0;
  uint64_t pending_full_reads = 0;             // full re-reads since start
};

// What the applier may learn from or tell the roster.
struct ApplierHooks {
  // The roster's view of a user (quota and usage, for urgency); nullopt if unknown.
  std::function<std::optional<hiddify_sync::v1::User>(const std::string& uuid)> lookup_user;
  // Called with every user as the parent holds it after a write of ours
  // (UserWriteResult::user_after: the PATCH's answer, or the row re-read).
  std::function<void(const hiddify_sync::v1::User&)> on_user_patched;
  // Called after every attempt to apply one user's pending bytes (api: its
  // GET and PATCH; database: its batch), with how long it took and whether
  // the bytes reached the parent.
  std::function<void(absl::Duration took, bool applied)> on_user_applied;
};

// Each cycle: settle earlier writes left open (ParentWriter::Settle, users
// not in backoff), refresh the pending totals of the users that changed
// (hub/apply/pending_index.h; every user at the first cycle and every 5 min), pick the due users
// (hub/apply/apply_scheduler.h), hand them to ParentWriter::Write. A user the
// parent does not know -> orphaned (never retried). A parent error of one
// user -> that user backs off exponentially, the others go on. The parent
// unreachable (ParentWriter::IsUnreachable) -> the cycle stops and all
// applies back off.
// Hooks are called on the thread running the cycle (the applier's thread, or
// RunOneCycle's caller) with the cycle lock held: they must not call
// RunOneCycle(). Stats() is safe from anywhere.
class Applier {
 public:
  Applier(Journal* journal, std::unique_ptr<ParentWriter> writer, ApplierHooks hooks,
          ApplierOptions options);
  ~Applier();  // Stop()s

  // Settles open writes (ParentWriter::Settle), then starts the thread.
  // A parent that is down does not fail Start(): unresolved writes are
  // retried by the cycles (their users wait). Journal errors do fail it.
  absl::Status Start();
  // Finishes the write in flight (and its journal update), then returns.
  // Idempotent; RunOneCycle() still works afterwards (final flush).
  void Stop();
  // Runs one apply cycle on the caller's thread, as if the clock read `now`
  // (used when the thread is not started, e.g. a final flush; a `now` far
  // ahead makes every pending user due and ends every backoff). Returns
  // journal errors; parent errors show in Stats().
  absl::Status RunOneCycle(absl::Time now);
  ApplierStats Stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hsync::hub
