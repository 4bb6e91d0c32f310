// The hiddify_sync.v1.SyncHub service, on gRPC's callback API so that neither
// open WatchRoster streams nor reports waiting for a journal commit hold a
// gRPC thread:
//  - every call is authenticated by its node token (NodeAuthenticator); no
//    TCP caller is trusted for its address, loopback included (a local
//    forwarder may relay anyone). Only GetStatus and GetRoster answer a
//    caller without a token, and only over the unix operator socket (peer
//    "unix:", root-only by its file mode);
//  - ReportUsage: node check, ReportValidator, then Journal::Accept on the
//    worker pool (concurrent reports share a group commit), ack;
//  - WatchRoster: a RosterStreamReactor per stream, fed by the RosterStore;
//  - GetRoster / WatchRoster are "raw" methods: the roster goes out as
//    pre-encoded shared buffers, never re-serialized per stream.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "hub/service/auth_rate_limiter.h"
#include "hub/service/hub_status.h"
#include "hub/journal/journal.h"
#include "hub/service/node_auth.h"
#include "hub/roster/roster_store.h"
#include "hub/roster/roster_stream.h"
#include "hub/util/worker_pool.h"

namespace hsync::hub {

using SyncHubCallbackBase = hiddify_sync::v1::SyncHub::WithCallbackMethod_ReportUsage<
    hiddify_sync::v1::SyncHub::WithRawCallbackMethod_WatchRoster<
        hiddify_sync::v1::SyncHub::WithRawCallbackMethod_GetRoster<
            hiddify_sync::v1::SyncHub::WithCallbackMethod_GetStatus<
                hiddify_sync::v1::SyncHub::Service>>>>;

struct SyncHubServiceDeps {
  Journal* journal = nullptr;
  RosterStore* roster = nullptr;
  const NodeAuthenticator* auth = nullptr;
  WorkerPool* pool = nullptr;  // runs journal commits and status queries
  // Builds the hub's status (may block on the journal); runs on the pool.
  std::function<absl::StatusOr<hiddify_sync::v1::HubStatus>()> status;
  // Optional: refuses peers that failed to authenticate too often (RESOURCE_EXHAUSTED).
  AuthRateLimiter* limiter = nullptr;
};

// Counters kept by the RPC layer (for status and metrics).
struct ServiceCounters {
  uint64_t reports_accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t auth_failures = 0;
};

class SyncHubService final : public SyncHubCallbackBase {
 public:
  explicit SyncHubService(SyncHubServiceDeps deps);

  grpc::ServerUnaryReactor* ReportUsage(grpc::CallbackServerContext* context,
                                        const hiddify_sync::v1::UsageReport* request,
                                        hiddify_sync::v1::ReportAck* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchRoster(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* GetRoster(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const hiddify_sync::v1::GetStatusRequest* request,
                                      hiddify_sync::v1::HubStatus* response) override;

  // Ends every open WatchRoster stream with UNAVAILABLE and refuses new calls.
  void BeginShutdown();
  // Ends the open WatchRoster streams of nodes the authenticator no longer knows.
  void EndStreamsOfUnknownNodes();

  // Per node: duplicates, refusals, open streams and the roster version sent.
  std::map<std::string, NodeLiveState> LiveNodes() const;
  ServiceCounters Counters() const;
  size_t open_roster_streams() const { return streams_.open(); }
  RosterStreamTotals roster_stream_totals() const { return streams_.Totals(); }

 private:
  // The calling node, from the bearer token.
  absl::StatusOr<std::string> Authenticate(const grpc::CallbackServerContext& context);
  // Like Authenticate, but a caller on the unix operator socket without any
  // token is let in (as ""). A token, where given, is always checked.
  absl::StatusOr<std::string> AuthenticateOrOperator(const grpc::CallbackServerContext& context);
  void CountRejected(const std::string& node_id);

  SyncHubServiceDeps deps_;
  RosterStreamRegistry streams_;
  std::atomic<bool> shutting_down_{false};

  mutable absl::Mutex mu_;
  std::map<std::string, NodeLiveState> live_ ABSL_GUARDED_BY(mu_);
  ServiceCounters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::hub
