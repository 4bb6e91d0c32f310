// e2e_soak: random faults on one running system for as long as asked.
//   e2e_soak [--seconds N] [--children N] [--seed N]
// (--seconds defaults to $HSYNC_SOAK_SECONDS, else 600). Every trial picks a
// fault kind at random and checks both invariants after it (see
// fault_trials.h); the run stops at the first broken invariant. Prints a line
// per event and the totals: trials of each kind and bytes checked.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "tests/e2e/fault_trials.h"
#include "tests/e2e/system_under_test.h"

namespace hsync::testing {
void StopSharedMariaDb();  // tests/support/test_mariadb.cc
}  // namespace hsync::testing

namespace {

int Usage() {
  std::fprintf(stderr, "usage: e2e_soak [--seconds N] [--children N] [--seed N]\n");
  return 2;
}

int Run(int argc, char** argv) {
  int64_t seconds = 600;
  if (const char* env = std::getenv("HSYNC_SOAK_SECONDS"); env != nullptr) {
    if (!absl::SimpleAtoi(env, &seconds)) return Usage();
  }
  int children = 3;
  uint64_t seed = hsync::e2e::E2eSeed();
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--seconds") == 0 && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &seconds)) return Usage();
    } else if (std::strcmp(argv[i], "--children") == 0 && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &children) || children < 1) return Usage();
    } else if (std::strcmp(argv[i], "--seed") == 0 && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &seed)) return Usage();
    } else {
      return Usage();
    }
  }
  std::printf("e2e_soak: %lld s, %d children, seed %llu\n", static_cast<long long>(seconds),
              children, static_cast<unsigned long long>(seed));
  hsync::e2e::SystemOptions options;
  options.children = children;
  options.parent_users = 60;
  options.traffic.interval_ms = 150;
  options.traffic.users_per_tick = 6;
  options.traffic.rmw_gap_ms = 60;
  options.seed = seed;
  auto sut = hsync::e2e::SystemUnderTest::Start(options);
  if (!sut.ok()) {
    std::fprintf(stderr, "e2e_soak: cannot start the system: %s\n", sut.status().ToString().c_str());
    return 1;
  }
  hsync::e2e::FaultTrials trials(sut->get(), seed);
  const auto& kinds = hsync::e2e::AllFaultKinds();
  const absl::Time end = absl::Now() + absl::Seconds(seconds);
  int exit_code = 0;
  while (absl::Now() < end) {
    const auto kind = kinds[trials.rng()() % kinds.size()];
    if (absl::Status result = trials.Run(kind); !result.ok()) {
      std::printf("e2e_soak: FAILED (seed %llu): %s\n", static_cast<unsigned long long>(seed),
                  result.ToString().c_str());
      exit_code = 1;
      break;
    }
  }
  std::printf("e2e_soak: %s\n", trials.totals().Summary().c_str());
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  const int code = Run(argc, argv);
  hsync::testing::StopSharedMariaDb();
  return code;
}
