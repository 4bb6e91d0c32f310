// Wires the reporter together: the status server, the collect loop (its own
// thread), the outbox sender, the roster follower, the core syncer (proxy
// cores follow each changed user) and the apply trigger.
// The collect thread first makes sure the state schema exists (retrying with
// backoff while MariaDB is unreachable, shown in status), starts the sender,
// collects once (the baseline on a fresh state), then starts the roster
// follower and collects every interval.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics_endpoint.h"
#include "reporter/panel/apply_trigger.h"
#include "reporter/panel/core_sync_queue.h"
#include "reporter/panel/core_syncer.h"
#include "reporter/collect/collector.h"
#include "reporter/outbox/outbox_sender.h"
#include "reporter/config/reporter_config.h"
#include "reporter/status/reporter_metrics.h"
#include "reporter/roster/roster_applier.h"
#include "reporter/roster/roster_follower.h"
#include "reporter/state/state_store.h"
#include "reporter/status/status_board.h"
#include "reporter/status/status_service.h"
#include "reporter/collect/usage_follower.h"
#include "reporter/collect/usage_resetter.h"

namespace hsync::reporter {

class ReporterDaemon {
 public:
  explicit ReporterDaemon(ReporterConfig config);
  ~ReporterDaemon();  // Stop()s

  // Starts listening for status and launches the workers. Fails only when the
  // status address cannot be bound. /metrics (metrics.listen) that cannot
  // listen is logged as an error; the reporter runs on without it.
  absl::Status Start();
  // The port /metrics is served on; 0 when off or not listening.
  int metrics_port() const { return metrics_ == nullptr ? 0 : metrics_->port(); }
  // Stops every worker; a collect or roster transaction in flight is finished
  // (committed or rolled back) first.
  void Stop();
  // For the systemd watchdog: the collect thread is alive and not stuck.
  bool Alive(absl::Time now) const;

 private:
  void CollectLoop();
  bool EnsureState();  // true once the schema exists
  // Checks the panel for add_usage_json and publishes the usage mode in effect.
  void CheckUsageMode();
  bool CollectOnce();  // true on success
  void PublishOutboxStats();
  void PublishHeldRemovals();
  void StartMetrics();
  bool WaitOrStop(absl::Duration d);  // true when asked to stop

  ReporterConfig config_;
  MariaDbOptions db_options_;
  StatusBoard board_;
  std::shared_ptr<grpc::Channel> channel_;
  StateStore store_;
  Collector collector_;
  CoreSyncQueue core_queue_;
  std::unique_ptr<UsageResetter> resetter_;
  std::unique_ptr<UsageFollower> usage_follower_;  // usage_mode "follow"
  RosterApplier applier_;
  ApplyTrigger trigger_;
  std::unique_ptr<CoreSyncer> core_syncer_;
  std::unique_ptr<OutboxSender> sender_;
  std::unique_ptr<RosterFollower> follower_;
  std::unique_ptr<StatusService> status_service_;
  std::unique_ptr<StatusServer> status_server_;
  ReporterInstruments instruments_;
  std::unique_ptr<MetricsEndpoint> metrics_;

  std::unique_ptr<MariaDbConnection> collect_conn_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> heartbeat_unix_ms_{0};
  std::thread collect_thread_;
};

}  // namespace hsync::reporter
