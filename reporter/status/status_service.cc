#include "reporter/status/status_service.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "reporter/config/reporter_config.h"

namespace hsync::reporter {

StatusService::StatusService(StatusBoard* board, std::shared_ptr<grpc::Channel> hub_channel)
    : board_(board), hub_channel_(std::move(hub_channel)) {}

hiddify_sync::v1::ReporterStatusReply StatusService::Current() const {
  hiddify_sync::v1::ReporterStatusReply reply = board_->Snapshot();
  bool connected = reply.roster_stream_open();
  if (hub_channel_ != nullptr) {
    connected = connected || hub_channel_->GetState(false) == GRPC_CHANNEL_READY;
  }
  reply.set_hub_connected(connected);
  return reply;
}

grpc::Status StatusService::GetStatus(grpc::ServerContext*,
                                      const hiddify_sync::v1::GetReporterStatusRequest*,
                                      hiddify_sync::v1::ReporterStatusReply* reply) {
  *reply = Current();
  return grpc::Status::OK;
}

absl::StatusOr<std::unique_ptr<StatusServer>> StatusServer::Start(const std::string& listen,
                                                                  StatusService* service) {
  if (!IsLoopbackAddress(listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("status.listen: ", listen, " is not a loopback address"));
  }
  static const bool plugins_ready = [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    return true;
  }();
  (void)plugins_ready;
  std::unique_ptr<StatusServer> server(new StatusServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(service);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("status.listen: cannot listen on ", listen, " (address in use?)"));
  }
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus("", true);
    health->SetServingStatus("hiddify_sync.v1.ReporterStatus", true);
  }
  return server;
}

StatusServer::~StatusServer() { Shutdown(); }

void StatusServer::Shutdown() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
  }
}

}  // namespace hsync::reporter
