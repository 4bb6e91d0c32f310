#include "tests/panelsim/apply_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "tests/panelsim/core_render.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/shutdown_signal.h"

namespace hsync::panelsim {
namespace {

// install.sh treats its lock file as stale after this long.
constexpr absl::Duration kStaleLock = absl::Seconds(120);

bool IsApplyUsers(const std::vector<std::string>& args) {
  return !args.empty() && args[0] == "apply_users";
}

}  // namespace

ApplyRunner::ApplyRunner(int duration_ms, ProxyCores& cores, SimClock& clock,
                         SimCounters& counters)
    : duration_(absl::Milliseconds(duration_ms)),
      cores_(cores),
      clock_(clock),
      counters_(counters),
      worker_([this] { BackgroundLoop(); }) {}

ApplyRunner::~ApplyRunner() { Stop(); }

void ApplyRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    wake_.Signal();
  }
  if (worker_.joinable()) worker_.join();
}

bool ApplyRunner::TryLock() {
  absl::MutexLock lock(&mu_);
  if (active_ && absl::Now() - locked_at_ < kStaleLock) {
    counters_.CountApplyBusy();
    return false;
  }
  active_ = true;
  locked_at_ = absl::Now();
  return true;
}

int ApplyRunner::Run(const std::vector<std::string>& args) {
  if (!TryLock()) return 12;
  return RunLocked(args);
}

int ApplyRunner::RunLocked(const std::vector<std::string>& args) {
  counters_.CountApplyRun();
  const bool full_install = !IsApplyUsers(args);
  if (full_install) counters_.CountFullInstall();
  // The run's `all-configs` read of the database, at its start.
  absl::StatusOr<std::vector<std::string>> users =
      RenderCoreUsers(DbSession::ForThisThread(), clock_.Today());
  SleepUnlessStopping(duration_);
  int exit_code = 0;
  if (users.ok()) {
    cores_.RenderSingboxAndWireguard(*users);
    counters_.CountSingboxRestart();
    if (full_install) {
      cores_.RestartXray(*users);
      counters_.CountXrayRestart();
    }
  } else {
    LogWarning(absl::StrCat("apply run (", absl::StrJoin(args, " "),
                            "): reading the database failed: ", users.status().message()));
    exit_code = 1;
  }
  absl::MutexLock lock(&mu_);
  active_ = false;
  return exit_code;
}

void ApplyRunner::StartInBackground() {
  if (!TryLock()) return;
  absl::MutexLock lock(&mu_);
  background_requested_ = true;
  wake_.Signal();
}

void ApplyRunner::BackgroundLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!background_requested_ && !stopping_) wake_.WaitWithTimeout(&mu_, absl::Milliseconds(500));
      if (stopping_ || ShuttingDown()) return;
      if (!background_requested_) continue;
      background_requested_ = false;
    }
    RunLocked({"apply_users", "--no-gui"});
  }
}

}  // namespace hsync::panelsim
