// Client sides of the standard gRPC services the hub serves, used the way a
// health prober and grpcurl use them: grpc.health.v1.Health/Check and server
// reflection as a protobuf DescriptorDatabase (list, describe).
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "tests/hub/grpc_probes.pb.h"

namespace hsync::hub::testing {

namespace probes = ::hsync::testing::probes;

// Calls Health/Check for `service` ("" = the whole server); returns the
// serving status (probes::HealthCheckResponse::SERVING = 1), or the call's error.
absl::StatusOr<int> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service,
                                absl::Duration timeout = absl::Seconds(5));

// Descriptors fetched from the server over one reflection stream.
class ReflectionDescriptorDatabase : public google::protobuf::DescriptorDatabase {
 public:
  explicit ReflectionDescriptorDatabase(std::shared_ptr<grpc::Channel> channel);
  ~ReflectionDescriptorDatabase() override;

  // Status of opening the stream (check before use).
  const absl::Status& status() const { return status_; }
  absl::StatusOr<std::vector<std::string>> ListServices();

  bool FindFileByName(const std::string& filename,
                      google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingSymbol(const std::string& symbol_name,
                                google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingExtension(const std::string& containing_type, int field_number,
                                   google::protobuf::FileDescriptorProto* output) override;

 private:
  absl::StatusOr<probes::ServerReflectionResponse> Ask(const probes::ServerReflectionRequest& request);
  // Caches every file of a file_descriptor_response; returns the first.
  bool TakeFiles(const probes::ServerReflectionResponse& response,
                 google::protobuf::FileDescriptorProto* first);

  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  absl::Status status_;
  std::map<std::string, google::protobuf::FileDescriptorProto> files_;
};

}  // namespace hsync::hub::testing
