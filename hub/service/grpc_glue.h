// Small conversions between our types and gRPC's: absl::Status <-> grpc::Status,
// pre-encoded messages -> grpc::ByteBuffer (zero copy for large pieces).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "hub/roster/roster_store.h"

namespace hsync::hub {

grpc::Status ToGrpcStatus(const absl::Status& status);

// Slices referencing the message's shared buffers (kept alive by the slices);
// small pieces are copied.
grpc::ByteBuffer ToByteBuffer(const EncodedMessage& message);

// Value of the first `key` metadata entry of the call, "" if absent.
std::string ClientMetadata(const grpc::CallbackServerContext& context, const std::string& key);

}  // namespace hsync::hub
