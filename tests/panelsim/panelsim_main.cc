// panelsim: the Hiddify panel, played for tests (tests/panelsim/README.md).
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "tests/panelsim/apply_runner.h"
#include "tests/panelsim/control_api.h"
#include "tests/panelsim/core_render.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/fault_injector.h"
#include "tests/panelsim/panel_api.h"
#include "tests/panelsim/panel_generation.h"
#include "tests/panelsim/proxy_cores.h"
#include "tests/panelsim/quick_apply.h"
#include "tests/panelsim/request_serializer.h"
#include "tests/panelsim/reset_job.h"
#include "tests/panelsim/schema_setup.h"
#include "tests/panelsim/shutdown_signal.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/sim_options.h"
#include "tests/panelsim/sim_server.h"
#include "tests/panelsim/traffic_generator.h"
#include "tests/panelsim/usage_adder.h"
#include "tests/panelsim/usage_resetter.h"
#include "tests/panelsim/usage_task.h"

namespace hsync::panelsim {
namespace {

// Waits up to 30 s for the database to accept a connection.
absl::Status WaitForDatabase(DbSession& db) {
  absl::Status status;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    status = db.QueryText("SELECT 1").status();
    if (status.ok() || absl::Now() > deadline) return status;
    absl::SleepFor(absl::Milliseconds(200));
  } while (true);
}

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.good()) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  absl::StatusOr<SimOptions> parsed = ParseSimOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "panelsim: %s\n%s", std::string(parsed.status().message()).c_str(),
                 SimUsage());
    return 2;
  }
  const SimOptions& options = *parsed;

  // Keep freed memory for reuse: a big user list would otherwise be mmap'ed
  // and page-faulted afresh on every request.
  // One arena (per-thread arenas grow and shrink with mprotect on every list),
  // big blocks from the heap, and no trimming.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 512 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);

  // Signals are taken by one thread; every other thread inherits the mask.
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  MariaDbOptions db_options;
  db_options.unix_socket = options.mysql_socket;
  db_options.database = options.database;
  DbSession::Configure(db_options);
  DbSession& db = DbSession::ForThisThread();
  if (absl::Status s = WaitForDatabase(db); !s.ok()) {
    LogError(absl::StrCat("panelsim: database unreachable: ", s.message()));
    return 1;
  }
  SimClock clock(options.today);
  if (options.create_schema) {
    if (absl::Status s = CreateHiddifySchema(db); !s.ok()) {
      LogError(absl::StrCat("panelsim: creating the schema failed: ", s.message()));
      return 1;
    }
  }
  // What the panel's own migrations leave at start: str_config and (12.x)
  // the add_usage_json procedure.
  if (absl::Status s = CreateStrConfigTable(db); !s.ok()) {
    LogError(absl::StrCat("panelsim: creating str_config failed: ", s.message()));
    return 1;
  }
  if (absl::Status s = SetUpUsageProcedure(db, options.generation); !s.ok()) {
    LogError(absl::StrCat("panelsim: setting up add_usage_json failed: ", s.message()));
    return 1;
  }
  const std::vector<std::pair<std::string, std::string>> str_config = {
      {"core_type", CoreTypeName(options.core_type)}, {"proxy_path_admin", options.proxy_path}};
  for (const auto& [key, value] : str_config) {
    if (absl::Status s = WriteStrConfig(db, key, value); !s.ok()) {
      LogError(absl::StrCat("panelsim: writing str_config ", key, " failed: ", s.message()));
      return 1;
    }
  }
  if (!options.owner_uuid.empty()) {
    if (absl::Status s = EnsureOwnerAdmin(db, options.owner_uuid); !s.ok()) {
      LogError(absl::StrCat("panelsim: creating the owner admin failed: ", s.message()));
      return 1;
    }
  }
  if (options.demo_users > 0) {
    if (absl::Status s = InsertDemoUsers(db, options.demo_users, clock, options.seed); !s.ok()) {
      LogError(absl::StrCat("panelsim: inserting demo users failed: ", s.message()));
      return 1;
    }
  }

  SimCounters counters;
  FaultInjector faults;
  ProxyCores cores(options.core_type);
  // The server boots: xray, sing-box and WireGuard load what install.sh
  // rendered from the database.
  absl::StatusOr<std::vector<std::string>> booted = RenderCoreUsers(db, clock.Today());
  if (!booted.ok()) {
    LogError(absl::StrCat("panelsim: reading the users for the cores failed: ",
                          booted.status().message()));
    return 1;
  }
  cores.RestartXray(*booted);
  cores.RenderSingboxAndWireguard(*booted);

  ApplyRunner apply(options.apply_duration_ms, cores, clock, counters);
  NoQuickApply no_quick_apply;
  BackgroundQuickApply background_quick_apply(apply);
  QuickApplyUsers& quick_apply = ApiWritesStartApplyRuns(options.generation)
                                     ? static_cast<QuickApplyUsers&>(background_quick_apply)
                                     : static_cast<QuickApplyUsers&>(no_quick_apply);
  std::unique_ptr<UsageAdder> adder = MakeUsageAdder(options.generation, options.traffic_rmw_gap_ms);
  ResetJob reset_job(cores, clock);
  UsageTask usage_task(cores, *adder, reset_job, quick_apply, clock, counters);
  TrafficGenerator traffic(TrafficOptions{options.traffic_interval_ms, options.traffic_users_per_tick,
                                          options.traffic_max_bytes, options.seed},
                           cores, *adder, clock, counters);
  UsageResetter resetter(clock);
  PanelApi panel(options.proxy_path, PanelVersionOf(options.generation), clock, counters, cores,
                 quick_apply);
  ControlApi control(ControlTargets{faults, counters, traffic, resetter, clock, cores, apply,
                                    usage_task, reset_job, quick_apply});
  RequestSerializer serializer(RequestCosts{options.patch_cost_ms, options.post_cost_ms,
                                            options.get_cost_ms, options.list_cost_us_per_user},
                               counters);
  SimServer server(panel, options.control ? &control : nullptr, faults, counters, serializer,
                   options.threads);

  absl::StatusOr<int> port = server.Bind(options.listen, options.port);
  if (!port.ok()) {
    LogError(absl::StrCat("panelsim: ", port.status().message()));
    return 1;
  }
  traffic.Start();
  resetter.Start(options.reset_interval_ms);
  usage_task.Start(options.usage_task_interval_ms);

  std::thread signal_thread([&] {
    int received = 0;
    sigwait(&stop_signals, &received);
    LogInfo(absl::StrCat("panelsim: signal ", received, ", stopping"));
    TriggerShutdown();
    server.Stop();
    // Never hang on a stuck worker: leave within 3 s whatever happens.
    std::thread([] {
      absl::SleepFor(absl::Seconds(3));
      _exit(0);
    }).detach();
  });
  signal_thread.detach();

  if (!options.port_file.empty()) {
    if (absl::Status s = WritePortFile(options.port_file, *port); !s.ok()) {
      LogError(absl::StrCat("panelsim: ", s.message()));
      return 1;
    }
  }
  std::printf("panelsim listening on %s:%d\n", options.listen.c_str(), *port);
  std::fflush(stdout);
  LogInfo(absl::StrCat("panelsim: database ", options.database, ", proxy path set, control API ",
                       options.control ? "on" : "off", ", panel ",
                       PanelVersionOf(options.generation), ", core ",
                       CoreTypeName(options.core_type)));
  const bool served = server.Serve();
  traffic.Stop();
  resetter.Stop();
  usage_task.Stop();
  apply.Stop();
  if (!served && !ShuttingDown()) {
    LogError("panelsim: the HTTP server failed");
    return 1;
  }
  _exit(0);  // skip destructors of thread-local connections racing with workers
}

}  // namespace
}  // namespace hsync::panelsim

int main(int argc, char** argv) { return hsync::panelsim::Run(argc, argv); }
