// The whole system under faults (issue 5): panelsim as the parent, the real
// hub, three children (panelsim generating traffic into a child database +
// the real reporter behind a TCP proxy). Each test injects one kind of fault
// at random moments (seeded; the seed is printed, HSYNC_E2E_SEED=N repeats
// the choices) while traffic flows, then pauses traffic, waits until
// everything drained and checks, to the byte, that every user's usage
// increase on the parent equals the bytes generated for it on all children,
// and that every child's users equal the parent's.
// HSYNC_E2E_TRIALS=N runs N trials per test (default 2 for the process kills,
// 1 for the rest, to keep the suite within a few minutes). Longer random
// runs: the e2e_soak binary.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/fault_trials.h"
#include "tests/e2e/system_under_test.h"

namespace hsync::e2e {
namespace {

// HSYNC_E2E_TRIALS overrides every test's default number of trials.
int TrialsPerTest(int default_trials) {
  int trials = default_trials;
  if (const char* env = std::getenv("HSYNC_E2E_TRIALS"); env != nullptr) {
    if (!absl::SimpleAtoi(env, &trials) || trials < 1) trials = default_trials;
  }
  return trials;
}

SystemOptions DefaultSystem(uint64_t seed) {
  SystemOptions options;
  options.children = 3;
  options.parent_users = 40;
  options.traffic.interval_ms = 200;
  options.traffic.users_per_tick = 5;
  options.traffic.max_bytes = 20'000'000;
  options.traffic.rmw_gap_ms = 20;
  options.seed = seed;
  return options;
}

// Starts a system, runs the trials of `kind`, prints the summary line.
void RunTrials(FaultKind kind, SystemOptions options, int default_trials = 1) {
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::printf("[fault-suite] %s: seed %llu (HSYNC_E2E_SEED=%llu repeats the random choices)\n",
              test.c_str(), static_cast<unsigned long long>(options.seed),
              static_cast<unsigned long long>(options.seed));
  std::fflush(stdout);
  const absl::Time start = absl::Now();
  auto sut = SystemUnderTest::Start(options);
  ASSERT_TRUE(sut.ok()) << sut.status();
  std::printf("[fault-suite] %s: system up in %.1f s\n", test.c_str(),
              absl::ToDoubleSeconds(absl::Now() - start));
  FaultTrials trials(sut->get(), options.seed);
  const int n = TrialsPerTest(default_trials);
  for (int i = 0; i < n; ++i) {
    const absl::Status result = trials.Run(kind);
    ASSERT_TRUE(result.ok()) << "trial " << i + 1 << " of " << n << " (seed " << options.seed
                             << "): " << result;
  }
  std::printf("[fault-suite] %s: %s\n", test.c_str(), trials.totals().Summary().c_str());
  if (options.parent_traffic.interval_ms > 0) {
    // The parent's own generator is the last of the snapshot's sources.
    auto snapshot = (*sut)->Snapshot();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    uint64_t own = 0;
    for (const auto& [uuid, bytes] : snapshot->generated.back()) own += bytes;
    std::printf("[fault-suite] %s: parent write = %s; the parent carried %llu bytes of its own\n",
                test.c_str(), options.parent_write.c_str(), static_cast<unsigned long long>(own));
    EXPECT_GT(own, 0u) << "the parent carried no traffic of its own: nothing raced the hub";
    auto hub = (*sut)->hub().Status();
    ASSERT_TRUE(hub.ok()) << hub.status();
    EXPECT_EQ(hub->parent_write_mode(), options.parent_write);
  }
  std::fflush(stdout);
  EXPECT_EQ(trials.totals().trials.at(FaultKindName(kind)), n);
  EXPECT_GT(trials.totals().bytes_checked, 0u) << "no traffic was generated: the test checked nothing";
}

TEST(FaultSuite, HubSigkillAndRestart) { RunTrials(FaultKind::kHubKill, DefaultSystem(E2eSeed()), 2); }

TEST(FaultSuite, ReporterSigkillAndRestart) {
  RunTrials(FaultKind::kReporterKill, DefaultSystem(E2eSeed()), 2);
}

TEST(FaultSuite, HubAndReporterSigkillAtOnce) {
  RunTrials(FaultKind::kHubAndReporterKill, DefaultSystem(E2eSeed()), 2);
}

TEST(FaultSuite, KilledProcessesRestartAfterRandomDelays) {
  RunTrials(FaultKind::kDelayedRestart, DefaultSystem(E2eSeed()), 2);
}

TEST(FaultSuite, ParentErrorsTimeoutsAndDrops) {
  RunTrials(FaultKind::kParentFaults, DefaultSystem(E2eSeed()));
}

TEST(FaultSuite, NetworkCutBetweenReporterAndHub) {
  RunTrials(FaultKind::kNetworkCut, DefaultSystem(E2eSeed()));
}

TEST(FaultSuite, MariaDbRestartUnderReporters) {
  RunTrials(FaultKind::kMariaDbRestart, DefaultSystem(E2eSeed()));
}

TEST(FaultSuite, ChildPeriodicResetWhileReportsInFlight) {
  RunTrials(FaultKind::kChildReset, DefaultSystem(E2eSeed()));
}

TEST(FaultSuite, PanelReadModifyWriteRacesReporter) {
  SystemOptions options = DefaultSystem(E2eSeed());
  // A long gap between the panel's read and write of a row, and more of them:
  // the reporter's collects keep landing inside those windows.
  options.traffic.interval_ms = 100;
  options.traffic.users_per_tick = 8;
  options.traffic.rmw_gap_ms = 150;
  RunTrials(FaultKind::kRmwRace, options);
}

TEST(FaultSuite, ChildPanelApiDownOrFailing) {
  RunTrials(FaultKind::kChildPanelFaults, DefaultSystem(E2eSeed()));
}

TEST(FaultSuite, ApplyRunsBusyAndSlow) {
  SystemOptions options = DefaultSystem(E2eSeed());
  options.child_apply_duration_ms = 1500;  // a slow install.sh: the reporter's runs exit 12 meanwhile
  RunTrials(FaultKind::kApplyBusy, options);
}

// Issue 12: the same faults with a hub that writes usage into the parent's
// database ([parent] write = "database") while the parent carries traffic of
// its own (its usage task adding atomically beside the hub): exact to the
// byte under every kind.
class DatabaseModeWithParentTraffic : public ::testing::TestWithParam<FaultKind> {};

TEST_P(DatabaseModeWithParentTraffic, ExactUnderTheFault) {
  SystemOptions options = DefaultSystem(E2eSeed());
  options.parent_write = "database";
  options.parent_traffic = options.traffic;
  if (GetParam() == FaultKind::kApplyBusy) options.child_apply_duration_ms = 1500;
  if (GetParam() == FaultKind::kRmwRace) {
    options.traffic.interval_ms = 100;
    options.traffic.users_per_tick = 8;
    options.traffic.rmw_gap_ms = 150;
  }
  RunTrials(GetParam(), options);
}

INSTANTIATE_TEST_SUITE_P(FaultSuite, DatabaseModeWithParentTraffic,
                         ::testing::ValuesIn(AllFaultKinds()),
                         [](const ::testing::TestParamInfo<FaultKind>& info) {
                           return FaultKindName(info.param);
                         });

}  // namespace
}  // namespace hsync::e2e
