// Talks to grpc.health.v1.Health and server reflection with hand-encoded
// protobuf bytes (their client stubs are not installed), the way a health
// prober and grpcurl would.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace hsync::testing {

// Health/Check for the whole server: true when SERVING.
absl::StatusOr<bool> HealthServing(const std::shared_ptr<grpc::Channel>& channel);

// The raw ServerReflectionResponse bytes answering list_services.
absl::StatusOr<std::string> ReflectionListServices(const std::shared_ptr<grpc::Channel>& channel);

}  // namespace hsync::testing
