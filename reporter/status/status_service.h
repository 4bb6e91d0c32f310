// The reporter's local gRPC endpoint (loopback only): ReporterStatus (every
// field of ReporterStatusReply, from the StatusBoard plus the live state of
// the hub channel), grpc.health.v1.Health and server reflection, so that
// grpcurl and health probers work without the .proto files.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "hiddify_sync/v1/reporter_status.grpc.pb.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {

class StatusService final : public hiddify_sync::v1::ReporterStatus::Service {
 public:
  // `hub_channel` may be null (then hub_connected follows the roster stream).
  StatusService(StatusBoard* board, std::shared_ptr<grpc::Channel> hub_channel);

  // What GetStatus answers: the board plus the live hub connection state.
  hiddify_sync::v1::ReporterStatusReply Current() const;

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const hiddify_sync::v1::GetReporterStatusRequest* request,
                         hiddify_sync::v1::ReporterStatusReply* reply) override;

 private:
  StatusBoard* board_;
  std::shared_ptr<grpc::Channel> hub_channel_;
};

// A running status server; Shutdown() (or destruction) stops it.
class StatusServer {
 public:
  // Listens on `listen` ("127.0.0.1:7444"; must be loopback) without TLS.
  static absl::StatusOr<std::unique_ptr<StatusServer>> Start(const std::string& listen,
                                                             StatusService* service);
  ~StatusServer();
  void Shutdown();
  int port() const { return port_; }

 private:
  StatusServer() = default;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace hsync::reporter
