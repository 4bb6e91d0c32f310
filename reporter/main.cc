// hiddify-sync-reporter [--config PATH]          run the daemon
// hiddify-sync-reporter status [--config PATH]   print the running daemon's status
// hiddify-sync-reporter approve-removals [--config PATH] [--yes]
//                                                 apply what the mass-removal guard held back
//
// Exit codes of the daemon: 0 after SIGTERM/SIGINT, 2 bad config or command
// line, 1 cannot start (status address in use). `status`: 0 healthy,
// 1 degraded, 2 down. `approve-removals`: see approve_removals_command.h.
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "reporter/ops/approve_removals_command.h"
#include "reporter/config/reporter_config.h"
#include "reporter/reporter_daemon.h"
#include "reporter/ops/status_command.h"
#include "reporter/version.h"

namespace {

constexpr char kUsage[] =
    "usage: hiddify-sync-reporter [--config PATH]\n"
    "       hiddify-sync-reporter status [--config PATH]\n"
    "       hiddify-sync-reporter approve-removals [--config PATH] [--yes]\n"
    "       hiddify-sync-reporter --version\n"
    "Default config: /etc/hiddify-sync/reporter.toml\n";

int RunDaemon(const std::string& config_path) {
  auto config = hsync::reporter::LoadReporterConfig(config_path);
  if (!config.ok()) {
    std::cerr << "hiddify-sync-reporter: invalid configuration: " << config.status().message()
              << "\n";
    return 2;
  }
  hsync::SetLogLevel(config->log_level);

  // Signals are taken synchronously by this thread; every worker inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  hsync::reporter::ReporterDaemon daemon(*std::move(config));
  if (absl::Status s = daemon.Start(); !s.ok()) {
    hsync::LogError(absl::StrCat("cannot start: ", s.message()));
    return 1;
  }
  sd_notify(0, "READY=1\nSTATUS=running");

  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  const absl::Duration tick =
      watchdog ? std::min(absl::Microseconds(watchdog_usec) / 3, absl::Seconds(1)) : absl::Seconds(1);
  while (true) {
    const struct timespec timeout = absl::ToTimespec(tick);
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGTERM || sig == SIGINT) {
      hsync::LogInfo(absl::StrCat("received ", strsignal(sig), "; finishing work in flight"));
      break;
    }
    if (sig == SIGHUP) hsync::LogInfo("SIGHUP ignored; restart the service to reload its config");
    if (watchdog && daemon.Alive(absl::Now())) sd_notify(0, "WATCHDOG=1");
  }
  sd_notify(0, "STOPPING=1");
  daemon.Stop();
  hsync::LogInfo("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = hsync::reporter::kDefaultConfigPath;
  bool status_command = false;
  bool approve_command = false;
  bool yes = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "status" && i == 1) {
      status_command = true;
    } else if (arg == "approve-removals" && i == 1) {
      approve_command = true;
    } else if (arg == "--yes" && approve_command) {
      yes = true;
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--version") {
      std::cout << "hiddify-sync-reporter " << hsync::reporter::kReporterVersion << "\n";
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "hiddify-sync-reporter: unknown argument \"" << arg << "\"\n" << kUsage;
      return 2;
    }
  }
  if (status_command) return hsync::reporter::RunStatusCommand(config_path, std::cout, std::cerr);
  if (approve_command) {
    hsync::reporter::ApproveRemovalsRequest request;
    request.config_path = config_path;
    request.yes = yes;
    request.interactive = isatty(STDIN_FILENO) == 1;
    return hsync::reporter::RunApproveRemovalsCommand(request, std::cin, std::cout, std::cerr);
  }
  return RunDaemon(config_path);
}
