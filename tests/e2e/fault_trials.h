// Fault-injection trials on a SystemUnderTest. One trial: take a baseline,
// let the children generate traffic for a few seconds while one fault of the
// chosen kind (and a random roster change on the parent) happens at random
// moments, pause traffic, wait until everything drained, then check both
// invariants: every user's parent increase equals the bytes generated for it
// on all children, to the byte; every child's users equal the parent's; every
// child's proxy cores hold the users active on the parent and its panel's
// own is_active equals the parent's.
// Timing and choices come from a seeded generator (the seed is printed).
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/e2e/system_under_test.h"

namespace hsync::e2e {

enum class FaultKind {
  kHubKill,             // SIGKILL the hub, restart it after a short random delay
  kReporterKill,        // SIGKILL one reporter, restart it after a short random delay
  kHubAndReporterKill,  // both at once, each restarted after its own delay
  kDelayedRestart,      // several processes killed, restarted after long random delays
  kParentFaults,        // the parent answers 5xx / times out / drops / answers late for a while
  kNetworkCut,          // reporter <-> hub connections cut (refused or black-holed), restored
  kMariaDbRestart,      // the MariaDB under every panel and reporter stopped and restarted
  kChildReset,          // children's periodic resets while reports are in flight
  kRmwRace,             // the panel's read-modify-write traffic racing the reporter (no other fault)
  kChildPanelFaults,    // a child panel's API down (connections dropped) or answering 500 while
                        // users change on the parent: its cores must follow once it is back
  kApplyBusy,           // apply runs started by someone else hold the panel's lock (the
                        // reporter's runs exit 12) while users change on the parent
};

const std::vector<FaultKind>& AllFaultKinds();
std::string FaultKindName(FaultKind kind);

struct TrialOptions {
  absl::Duration min_traffic = absl::Seconds(4);
  absl::Duration max_traffic = absl::Seconds(7);
  absl::Duration drain_timeout = absl::Seconds(120);
  absl::Duration roster_timeout = absl::Seconds(30);
  // Faults whose recovery takes the hub's intent settle time (a PATCH lost
  // without an answer: timeouts, drops, delayed answers) are chosen too.
  bool slow_parent_faults = true;
  bool verbose = true;  // a line per event on stdout
};

struct TrialTotals {
  std::map<std::string, int> trials;  // kind -> trials passed
  uint64_t bytes_checked = 0;         // bytes generated and found on the parent
  int failures = 0;
  // The longest wait, after the rosters agreed, until every child's cores and
  // is_active agreed with the parent (SystemUnderTest::WaitCoresFollow).
  absl::Duration cores_follow_max = absl::ZeroDuration();
  // "hub_kill=2 reporter_kill=1 ...; N bytes checked; cores within T"
  std::string Summary() const;
};

class FaultTrials {
 public:
  FaultTrials(SystemUnderTest* sut, uint64_t seed, TrialOptions options = {});

  // Runs one trial of `kind`; the error says which invariant broke and how.
  absl::Status Run(FaultKind kind);
  const TrialTotals& totals() const { return totals_; }
  std::mt19937_64& rng() { return rng_; }

 private:
  // A moment in [lo, hi].
  absl::Duration Between(absl::Duration lo, absl::Duration hi);
  int Child();
  // Every child 3 times in 10, else one random child.
  std::vector<int> SomeChildren();
  void Log(const std::string& line);
  // Runs the fault of `kind` starting now; returns when it is over (every
  // process running again, every path restored).
  absl::Status Inject(FaultKind kind);
  absl::Status KillAndRestart(bool hub, const std::vector<int>& reporters, absl::Duration max_delay);
  absl::Status ParentFaults();
  absl::Status NetworkCut();
  absl::Status ChildResets(absl::Duration window);
  absl::Status ChildPanelFaults();
  absl::Status ApplyBusy();
  // One random change of the parent's users through its API: `op` 0 create,
  // 1 block, 2 unblock, 3 edit; -1 = any.
  absl::Status RosterChange(int op = -1);
  // A change the cores must follow (create, block or unblock).
  absl::Status CoreRelevantRosterChange();

  SystemUnderTest* sut_;
  std::mt19937_64 rng_;
  TrialOptions options_;
  TrialTotals totals_;
  absl::Time trial_start_;
  int created_users_ = 0;
};

}  // namespace hsync::e2e
