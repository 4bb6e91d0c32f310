// hiddify-sync-hub: the single writer of usage to the parent panel and the
// roster source for every child (ARCHITECTURE.md).
//
//   hiddify-sync-hub [--config PATH]   run (default /etc/hiddify-sync/hub.toml)
//   hiddify-sync-hub --version
//   hiddify-sync-hub status | add-node NAME | remove-node NAME | list-nodes
//                                      operator subcommands (hub_commands.h)
//
// Exit codes: 0 after a clean SIGTERM/SIGINT shutdown, 1 when the hub cannot
// start (journal, listen address, parent client), 2 for a bad command line or
// configuration (every bad key is printed with its reason).
// Signals: SIGTERM/SIGINT stop gracefully; SIGHUP re-reads [nodes].
// systemd: READY=1 once serving, WATCHDOG=1 from the main loop when
// WatchdogSec is set, STOPPING=1 at shutdown.
#include <malloc.h>
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "hub/ops/hub_commands.h"
#include "hub/config/hub_config.h"
#include "hub/service/hub_server.h"

namespace {

using hsync::hub::HubConfig;
using hsync::hub::HubServer;

constexpr int kExitOk = 0;
constexpr int kExitStartFailed = 1;
constexpr int kExitUsage = 2;

struct CommandLine {
  std::string config_path = hsync::hub::kDefaultHubConfigPath;
  bool version = false;
  bool help = false;
};

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: hiddify-sync-hub [--config PATH] [--version] [--help]\n"
               "       hiddify-sync-hub status|add-node NAME|remove-node NAME|list-nodes"
               " [--config PATH]\n"
               "  --config PATH  hub configuration (default %s)\n"
               "  --version      print the version and exit\n",
               hsync::hub::kDefaultHubConfigPath);
}

bool ParseCommandLine(int argc, char** argv, CommandLine* out, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {
      out->version = true;
    } else if (arg == "--help" || arg == "-h") {
      out->help = true;
    } else if (arg == "--config" && i + 1 < argc) {
      out->config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      out->config_path = arg.substr(9);
    } else {
      *error = absl::StrCat("unknown or incomplete argument \"", arg, "\"");
      return false;
    }
  }
  if (out->config_path.empty()) {
    *error = "--config needs a path";
    return false;
  }
  return true;
}

// Prints every problem of a bad configuration on its own line.
void PrintConfigError(const absl::Status& status) {
  std::fprintf(stderr, "hiddify-sync-hub: invalid configuration:\n");
  for (absl::string_view problem : absl::StrSplit(status.message(), "; ")) {
    std::fprintf(stderr, "  %.*s\n", static_cast<int>(problem.size()), problem.data());
  }
}

std::string Summary(const HubConfig& config, int port) {
  return absl::StrCat("hiddify-sync-hub ", hsync::hub::HubVersion(), " serving on ", config.listen,
                      " (port ", port, ", ", config.plaintext ? "plaintext" : "TLS",
                      config.tls.require_client_cert ? ", client certificates required" : "",
                      "); parent ", hsync::hub::RedactedParentUrl(config.parent.base_url),
                      config.parent.verify_tls ? "" : " (TLS NOT verified)", "; ",
                      config.node_token_hashes.size(), " nodes; journal ", config.journal_path,
                      "; roster poll every ", absl::FormatDuration(config.roster_poll_interval),
                      "; max_apply_delay ", absl::FormatDuration(config.apply.max_apply_delay),
                      "; operator socket ",
                      config.operator_socket.empty() ? "off" : config.operator_socket);
}

// SIGHUP: take the [nodes] table from the file again. Other keys need a restart.
void ReloadNodes(const std::string& path, HubServer& server) {
  absl::StatusOr<HubConfig> config = hsync::hub::LoadHubConfig(path);
  if (!config.ok()) {
    hsync::LogError(absl::StrCat("SIGHUP: configuration not reloaded, keeping the current nodes: ",
                                 config.status().message()));
    return;
  }
  server.ReplaceNodes(config->node_token_hashes);
  hsync::LogInfo(absl::StrCat("SIGHUP: nodes reloaded (", config->node_token_hashes.size(),
                              " nodes); other settings take effect at the next restart"));
}

// Waits for SIGTERM/SIGINT; every tick (at most 30 s) pings the systemd
// watchdog and returns freed memory to the system; hourly prunes the
// journal's audit reports.
void RunUntilStopped(const std::string& config_path, const sigset_t& signals, HubServer& server) {
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  absl::Duration tick = absl::Seconds(30);
  if (watchdog) tick = std::min(tick, absl::Microseconds(watchdog_usec) / 3);
  absl::Time next_prune = absl::Now() + absl::Minutes(1);
  while (true) {
    const absl::Duration wait = tick;
    timespec timeout = absl::ToTimespec(wait);
    const int signal = sigtimedwait(&signals, nullptr, &timeout);
    if (signal == SIGTERM || signal == SIGINT) {
      hsync::LogInfo(absl::StrCat("received ", strsignal(signal), ", shutting down"));
      return;
    }
    if (signal == SIGHUP) ReloadNodes(config_path, server);
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    // Big roster sends and parent reads leave freed memory in the allocator's
    // per-thread arenas; hand it back so RSS reflects what is really in use.
    malloc_trim(0);
    if (absl::Now() >= next_prune) {
      if (absl::Status pruned = server.PruneJournal(); !pruned.ok()) {
        hsync::LogWarning(absl::StrCat("journal: pruning old reports failed: ", pruned.ToString()));
      }
      next_prune = absl::Now() + absl::Hours(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (std::optional<int> code = hsync::hub::RunHubSubcommand(argc, argv)) return *code;
  CommandLine command_line;
  std::string error;
  if (!ParseCommandLine(argc, argv, &command_line, &error)) {
    std::fprintf(stderr, "hiddify-sync-hub: %s\n", error.c_str());
    PrintUsage(stderr);
    return kExitUsage;
  }
  if (command_line.help) {
    PrintUsage(stdout);
    return kExitOk;
  }
  if (command_line.version) {
    std::printf("hiddify-sync-hub %s\n", hsync::hub::HubVersion());
    return kExitOk;
  }

  // Before any thread exists, so every thread inherits the mask and the
  // signals are only ever taken by sigtimedwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<HubConfig> config = hsync::hub::LoadHubConfig(command_line.config_path);
  if (!config.ok()) {
    PrintConfigError(config.status());
    return kExitUsage;
  }
  hsync::SetLogLevel(config->log_level);
  for (const std::string& warning : config->warnings) hsync::LogWarning(warning);

  absl::StatusOr<std::unique_ptr<HubServer>> server = HubServer::Start(*config);
  if (!server.ok()) {
    hsync::LogError(absl::StrCat("cannot start: ", server.status().ToString()));
    sd_notifyf(0, "STATUS=cannot start: %s", std::string(server.status().message()).c_str());
    return kExitStartFailed;
  }
  hsync::LogInfo(Summary(*config, (*server)->port()));
  sd_notify(0, "READY=1\nSTATUS=serving");

  RunUntilStopped(command_line.config_path, signals, **server);

  sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
  (*server)->Shutdown(absl::Seconds(10));
  server->reset();
  hsync::LogInfo("stopped cleanly");
  return kExitOk;
}
