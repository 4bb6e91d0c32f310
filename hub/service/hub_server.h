// The whole hub in one object: opens the journal, starts the gRPC server
// (SyncHub, grpc.health.v1.Health, server reflection) on the TCP listen
// address and, when configured, on the root-only operator unix socket
// (operator_socket.h), the applier and the roster poller, and stops them in
// the safe order. main() and in-process tests
// use it the same way.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/config/hub_config.h"

namespace hsync {
class MetricsEndpoint;
}  // namespace hsync

namespace hsync::hub {

class Applier;
class CoreSyncer;
class DatabaseParentWriter;
class AuthRateLimiter;
class HubInstruments;
class Journal;
class NodeAuthenticator;
class RosterPoller;
class RosterStore;
class SyncHubService;
class WorkerPool;

// The hub's version, as reported in HubStatus and --version.
const char* HubVersion();

class HubServer {
 public:
  // Start order: journal (Unavailable/Internal if it cannot be opened), in
  // database mode the parent's database (no access / wrong schema refuse the
  // start; down is waited for), gRPC server (health SERVING as soon as it
  // listens, since the journal is open), applier (settles open writes),
  // roster poller (first read right away), core syncer (database mode).
  static absl::StatusOr<std::unique_ptr<HubServer>> Start(const HubConfig& config);
  ~HubServer();  // Shutdown(5s) if still running

  // The port the server listens on (useful with "host:0").
  int port() const { return port_; }
  // The port /metrics is served on; 0 when metrics are off or could not
  // listen (that is logged as an error; the hub runs on without them).
  int metrics_port() const;

  // Health NOT_SERVING; open WatchRoster streams end with UNAVAILABLE; new
  // calls are refused; calls in flight get up to `grace` to finish; then the
  // poller stops, the applier finishes the PATCH in flight, the journal closes.
  void Shutdown(absl::Duration grace);

  // What GetStatus answers.
  absl::StatusOr<hiddify_sync::v1::HubStatus> Status();

  // Replaces the node tokens (config reload); open streams of nodes that are
  // no longer configured are ended.
  void ReplaceNodes(const std::map<std::string, std::string>& node_token_hashes);

  // Deletes raw audit reports older than the configured journal.keep_reports.
  absl::Status PruneJournal();

  RosterStore& roster() { return *roster_; }

 private:
  HubServer() = default;
  absl::Status StartServer(const HubConfig& config);
  void StartMetrics(const std::string& listen);

  absl::Time started_at_;
  absl::Duration keep_reports_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<RosterStore> roster_;
  std::unique_ptr<NodeAuthenticator> auth_;
  std::unique_ptr<AuthRateLimiter> limiter_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<SyncHubService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<RosterPoller> poller_;
  std::unique_ptr<CoreSyncer> core_syncer_;     // database mode only
  DatabaseParentWriter* database_writer_ = nullptr;  // owned by applier_; database mode only
  std::string parent_write_mode_ = "api";
  std::unique_ptr<HubInstruments> instruments_;
  std::unique_ptr<MetricsEndpoint> metrics_;
  int port_ = 0;
  std::string operator_socket_;  // "" = none
  ino_t operator_socket_inode_ = 0;
  bool stopped_ = false;
};

}  // namespace hsync::hub
