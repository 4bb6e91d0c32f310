// Small measuring helpers shared by the e2e benchmarks: the parent panel's
// call counters, a process's CPU time and RSS from /proc, percentiles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/panelsim_runner.h"

namespace hsync::e2e {

// panelsim's GET /_sim/counters, by route.
struct ParentCalls {
  uint64_t list_users = 0;     // GET list_users
  uint64_t get_user = 0;       // GET get_user
  uint64_t patch_user = 0;     // PATCH patch_user
  uint64_t other = 0;          // everything else
  uint64_t usage_patches = 0;  // PATCHes that changed current_usage
  uint64_t busy_ms = 0;        // the panel's serial clock: time spent serving API requests
  uint64_t sessions_created = 0;
  uint64_t total() const { return list_users + get_user + patch_user + other; }
  ParentCalls Minus(const ParentCalls& earlier) const;
};
absl::StatusOr<ParentCalls> ReadParentCalls(hsync::testing::PanelsimRunner& panel);

// CPU time (user + system) and resident set of a process.
struct ProcSample {
  double cpu_seconds = 0;
  uint64_t rss_bytes = 0;
};
absl::StatusOr<ProcSample> SampleProcess(int pid);

// The p-th percentile (0..100) of `values` (sorted in place); 0 when empty.
double Percentile(std::vector<double>& values, double p);

}  // namespace hsync::e2e
