// The whole hiddify-sync system on one machine, for end-to-end tests and
// benchmarks: panelsim as the parent (demo users), the real hub (plaintext on
// loopback, short apply delay and roster poll, journal in a temp dir), and N
// children (ChildNode: panel database + panelsim generating traffic + TCP
// proxy + real reporter). All databases live in SharedMariaDb().
//
// It offers the faults (SIGKILL/restart of each process, MariaDB restart;
// proxies and panelsim control for the rest), traffic control, quiescence
// ("everything generated has reached the parent") and the two invariants.
// Call it from one thread (the test's main thread: processes started from
// other threads die with them, PR_SET_PDEATHSIG).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/e2e/child_node.h"
#include "tests/e2e/hub_runner.h"
#include "tests/e2e/invariants.h"
#include "tests/support/panelsim_runner.h"

namespace hsync::e2e {

struct SystemOptions {
  int children = 3;
  int parent_users = 40;  // panelsim demo users on the parent
  ChildTraffic traffic;
  std::string collect_interval = "5s";
  std::string max_apply_delay = "1s";
  std::string roster_poll_interval = "1s";
  std::string hub_apply_interval = "200ms";
  int child_apply_duration_ms = 0;  // >0: each child's apply runs take this long
  // The parent's own traffic through its cores and usage task (Hiddify
  // parents usually carry some); interval_ms 0 = none. Counted in the usage
  // invariant like a child's.
  ChildTraffic parent_traffic{.interval_ms = 0};
  // [parent] write: "api" (GET + PATCH) or "database" (the hub writes the
  // parent's MariaDB, exact even with the parent's own traffic).
  std::string parent_write = "api";
  uint64_t seed = 1;
};

class SystemUnderTest {
 public:
  // Starts everything with traffic paused and waits until every child holds
  // the parent's roster.
  static absl::StatusOr<std::unique_ptr<SystemUnderTest>> Start(SystemOptions options);
  ~SystemUnderTest();

  const SystemOptions& options() const { return options_; }
  hsync::testing::PanelsimRunner& parent() { return *parent_; }
  HubRunner& hub() { return *hub_; }
  int child_count() const { return static_cast<int>(children_.size()); }
  ChildNode& child(int i) { return *children_[static_cast<size_t>(i)]; }

  // --- faults -------------------------------------------------------------
  void KillHub() { hub_->Kill(); }
  absl::Status RestartHub() { return hub_->Restart(); }
  void KillReporter(int i) { child(i).reporter().Kill(); }
  absl::Status StartReporter(int i) { return child(i).reporter().Start(); }
  // Stops the shared MariaDB (SIGKILL when `hard`, else a clean shutdown),
  // waits `down_for`, starts it again on the same datadir.
  absl::Status RestartMariaDb(bool hard, absl::Duration down_for);
  // A periodic reset on child `i` of user `uuid`, as the panel does it on a
  // new day: the child's clock moves one day on, the panel's own reset job
  // runs (resetting every weekly/monthly user whose period starts that day),
  // then POST /_sim/reset of `uuid`. The panel never resets in the middle of
  // its own traffic write, so traffic on that child pauses for the moment of
  // the reset. The bytes a reset zeroes before any collect saw them cannot
  // reach the parent (the panel discards them with the old period); they are
  // measured exactly for every user reset — the resets run while the
  // reporter's state lock is held, after a usage-task run flushed the cores,
  // so no collect and no usage add interleaves — and counted in
  // Snapshot().wiped.
  absl::Status ResetOnChild(int i, const std::string& uuid);
  // Users with current_usage > 0 in child `i`'s database.
  absl::StatusOr<std::vector<std::string>> UsersWithUsage(int i);

  // --- traffic ------------------------------------------------------------
  // Starts/pauses the traffic generators of every child and of the parent
  // (paused after Start()).
  absl::Status SetTraffic(bool enabled);

  // --- invariants ---------------------------------------------------------
  // Parent usage and bytes generated per child, now.
  absl::StatusOr<UsageSnapshot> Snapshot();
  // Pauses traffic, then waits until every reporter has collected after the
  // pause and has an empty outbox, and the hub has nothing pending.
  absl::Status StopTrafficAndDrain(absl::Duration timeout);
  // The usage invariant between `baseline` and now (call when drained).
  absl::StatusOr<UsageComparison> CompareWithBaseline(const UsageSnapshot& baseline);
  // Waits until every child's users equal the parent's; the error lists the
  // differences left at `timeout`.
  absl::Status WaitRosterConverged(absl::Duration timeout);
  // Waits until invariants 3 and 4 hold on every child (CoreDifferences:
  // each core holds the users active on the parent; the child panel's own
  // is_active equals the parent's). Returns how long that took; the error
  // lists the differences left at `timeout`.
  absl::StatusOr<absl::Duration> WaitCoresFollow(absl::Duration timeout);
  // The parent's users as its API lists them.
  absl::StatusOr<nlohmann::json> ParentUsers();
  // Hub and reporter status and log tails, for failure messages.
  std::string Diagnostics();

 private:
  SystemUnderTest() = default;
  absl::Status ResetWithStateLocked(int i, const std::string& uuid);
  // Polls every `poll` until `differences_of(parent users, child index)` is
  // empty for every child; returns how long that took, or `what` with the
  // differences left at `timeout`.
  absl::StatusOr<absl::Duration> WaitChildrenAgree(
      absl::Duration timeout, absl::Duration poll, const std::string& what,
      const std::function<std::vector<std::string>(const nlohmann::json&, int)>& differences_of);
  // Starts/pauses the parent's own traffic (no-op without it); paused, its
  // cores' counters are flushed into its table.
  absl::Status SetParentTraffic(bool enabled);
  // Users whose package ends on a day child `i`'s clock has shown but the
  // parent's has not (the child's clock runs ahead after ResetOnChild): their
  // validity legitimately differs between the two.
  std::set<std::string> ClockAffectedUsers(int i, const nlohmann::json& parent_users) const;
  SystemOptions options_;
  std::unique_ptr<hsync::testing::PanelsimRunner> parent_;
  std::unique_ptr<HubRunner> hub_;
  std::vector<std::unique_ptr<ChildNode>> children_;
  std::vector<int> child_day_offset_;              // days each child's clock is ahead
  std::vector<std::set<std::string>> local_resets_;  // per child
  std::map<std::string, uint64_t> wiped_;            // see ResetOnChild
  bool traffic_on_ = false;
};

// A random seed unless HSYNC_E2E_SEED is set; printed by the callers.
uint64_t E2eSeed();

}  // namespace hsync::e2e
