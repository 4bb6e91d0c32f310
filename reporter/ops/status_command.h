// `hiddify-sync-reporter status`: asks the running daemon's ReporterStatus
// service and prints a summary for a person. Exit code: 0 healthy,
// 1 degraded (running, but something needs attention), 2 down (not reachable).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "hiddify_sync/v1/reporter_status.pb.h"

namespace hsync::reporter {

enum class ReporterHealth { kHealthy = 0, kDegraded = 1, kDown = 2 };

struct HealthVerdict {
  ReporterHealth health = ReporterHealth::kHealthy;
  std::vector<std::string> reasons;  // why it is degraded
};

// Judges a status reply taken at `now`; `collect_interval` is the configured one.
HealthVerdict JudgeStatus(const hiddify_sync::v1::ReporterStatusReply& reply, absl::Time now,
                          absl::Duration collect_interval);

// Prints the reply and verdict in a human format.
void PrintStatus(const hiddify_sync::v1::ReporterStatusReply& reply, const HealthVerdict& verdict,
                 absl::Time now, std::ostream& out);

// The whole subcommand; returns the exit code.
int RunStatusCommand(const std::string& config_path, std::ostream& out, std::ostream& err);

}  // namespace hsync::reporter
