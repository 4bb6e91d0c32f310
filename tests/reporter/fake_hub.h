// A SyncHub double for reporter unit tests, served over a real loopback
// socket: checks the bearer token, acknowledges reports per (stream, seq) like
// the hub (duplicates are acked with the stream's acked seq, not counted),
// can reject a seq with INVALID_ARGUMENT, can refuse a seen seq whose payload
// differs with ALREADY_EXISTS (as the hub does since issue 10), and streams
// roster updates the test pushes.
#pragma once

#include <map>
#include <utility>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"

namespace hsync::testing {

class FakeHub final : public hiddify_sync::v1::SyncHub::Service {
 public:
  // Listens on 127.0.0.1:`port` (0 = pick one), plaintext.
  static std::unique_ptr<FakeHub> Start(std::string token, int port = 0);
  // Same over TLS with this certificate/key (PEM); `client_ca_pem` non-empty
  // = client certificates signed by it are required.
  static std::unique_ptr<FakeHub> StartTls(std::string token, const std::string& cert_pem,
                                           const std::string& key_pem,
                                           const std::string& client_ca_pem = "");
  ~FakeHub() override;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void Shutdown();

  // Reports with this seq get INVALID_ARGUMENT (0 = none).
  void RejectSeq(uint64_t seq);
  // true: a seq at or below the stream's acked seq whose payload differs from
  // the one accepted gets ALREADY_EXISTS; false (default): acked like any
  // duplicate (the hub before issue 10).
  void RefuseChangedPayloads(bool refuse);
  // How many calls were answered ALREADY_EXISTS.
  int refused_calls();
  // Every accepted (non-duplicate) report, in arrival order.
  std::vector<hiddify_sync::v1::UsageReport> Accepted();
  std::map<std::string, uint64_t> BytesByUuid();
  int calls();
  int unauthenticated_calls();

  // The full roster sent first to every new watcher.
  void SetRoster(const hiddify_sync::v1::RosterUpdate& full);
  // Sent to every open watcher.
  void Broadcast(const hiddify_sync::v1::RosterUpdate& update);
  int open_watchers();
  // Every WatchRoster request received, in order.
  std::vector<hiddify_sync::v1::WatchRosterRequest> roster_requests();
  // Ends every open WatchRoster stream with UNAVAILABLE (a broken stream).
  void BreakWatchers();

  grpc::Status ReportUsage(grpc::ServerContext* context, const hiddify_sync::v1::UsageReport* request,
                           hiddify_sync::v1::ReportAck* reply) override;
  grpc::Status WatchRoster(grpc::ServerContext* context,
                           const hiddify_sync::v1::WatchRosterRequest* request,
                           grpc::ServerWriter<hiddify_sync::v1::RosterUpdate>* writer) override;

 private:
  explicit FakeHub(std::string token) : token_(std::move(token)) {}
  static std::unique_ptr<FakeHub> Listen(std::string token, int port,
                                         std::shared_ptr<grpc::ServerCredentials> creds);
  bool Authorized(grpc::ServerContext* context);

  std::string token_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reject_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool refuse_changed_ ABSL_GUARDED_BY(mu_) = false;
  int refused_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, uint64_t> acked_ ABSL_GUARDED_BY(mu_);  // stream -> seq
  // (stream, seq) -> serialized report accepted
  std::map<std::pair<uint64_t, uint64_t>, std::string> payloads_ ABSL_GUARDED_BY(mu_);
  std::vector<hiddify_sync::v1::UsageReport> accepted_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int unauthenticated_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<hiddify_sync::v1::RosterUpdate> roster_ ABSL_GUARDED_BY(mu_);
  struct Watcher {
    std::vector<hiddify_sync::v1::RosterUpdate> queue;
    bool broken = false;
  };
  std::vector<hiddify_sync::v1::WatchRosterRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::testing
