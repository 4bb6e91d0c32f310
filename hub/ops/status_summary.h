// `hiddify-sync-hub status`, the judging and printing half: decides from a
// GetStatus answer whether the hub is healthy or degraded and prints a summary
// for a person. Pure (no I/O besides the given stream), so it can be tested
// alone. Exit codes of the command: 0 healthy, 1 degraded, 2 down.
//
// Degraded when any of:
//  - the parent panel is unreachable (last contact failed);
//  - users are failing (their bytes could not be written to the parent);
//  - the oldest pending bytes wait longer than max(2 x apply.max_apply_delay, 30 s);
//  - parent users are unreadable and left out of the roster (roster_skipped_users);
//  - a node is silent: no open roster stream and no report for more than
//    5 minutes (or never, once the hub has run for 5 minutes). A quiet child
//    with no traffic keeps its roster stream open and is not silent.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::hub {

enum class HubHealth { kHealthy = 0, kDegraded = 1, kDown = 2 };

struct HubVerdict {
  HubHealth health = HubHealth::kHealthy;
  std::vector<std::string> reasons;  // why it is degraded, one line each
};

struct HubStatusThresholds {
  absl::Duration max_apply_delay = absl::Seconds(60);  // from [apply] of the config
  absl::Duration silent_node = absl::Minutes(5);
};

// Judges a status answer taken at `now`.
HubVerdict JudgeHubStatus(const hiddify_sync::v1::HubStatus& status, absl::Time now,
                          const HubStatusThresholds& thresholds);

// Prints the answer and the verdict. Shows no secret (HubStatus holds none:
// uuids, node ids, counters, error texts that the hub already redacts).
void PrintHubStatus(const hiddify_sync::v1::HubStatus& status, const HubVerdict& verdict,
                    absl::Time now, std::ostream& out);

}  // namespace hsync::hub
