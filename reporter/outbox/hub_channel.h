// The gRPC channel to hiddify-sync-hub, built from [hub] config: TLS with the
// configured (or system) roots and optional client certificate, or plaintext
// for a loopback address. Reconnect backoff is short (0.5 s .. 10 s) so a hub
// that comes back is used within seconds. Every call carries the node token
// as `authorization: Bearer <token>` (AddHubAuth).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "reporter/config/reporter_config.h"

namespace hsync::reporter {

std::shared_ptr<grpc::Channel> MakeHubChannel(const HubConfig& hub);

// Adds the bearer token to a call's metadata.
void AddHubAuth(grpc::ClientContext& context, const std::string& token);

// A one-line, secret-free description of a failed call, with advice for the
// codes an operator must act on (UNAUTHENTICATED, PERMISSION_DENIED, ...).
std::string DescribeHubError(const grpc::Status& status);

}  // namespace hsync::reporter
