#include "reporter/outbox/hub_channel.h"

#include "absl/strings/str_cat.h"

namespace hsync::reporter {

std::shared_ptr<grpc::Channel> MakeHubChannel(const HubConfig& hub) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10'000);
  // Detect a silently dead connection (the roster stream may be idle for long).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 300'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  args.SetMaxReceiveMessageSize(256 << 20);  // a full roster can be large
  args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "hiddify-sync-reporter");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (hub.plaintext) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = hub.ca_pem;
    ssl.pem_cert_chain = hub.cert_pem;
    ssl.pem_private_key = hub.key_pem;
    creds = grpc::SslCredentials(ssl);
    if (!hub.server_name.empty()) args.SetSslTargetNameOverride(hub.server_name);
  }
  return grpc::CreateCustomChannel(hub.address, creds, args);
}

void AddHubAuth(grpc::ClientContext& context, const std::string& token) {
  context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

std::string DescribeHubError(const grpc::Status& status) {
  std::string text = absl::StrCat("code ", static_cast<int>(status.error_code()), " ",
                                  status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::StrCat("the hub rejected this node's token (UNAUTHENTICATED: ",
                          status.error_message(),
                          "); check node_id and hub.token_file against the hub's [nodes]");
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::StrCat("the hub refused this node (PERMISSION_DENIED: ", status.error_message(),
                          "); check node_id against the hub's [nodes]");
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StrCat("hub unavailable (", status.error_message(), ")");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "hub did not answer in time (DEADLINE_EXCEEDED)";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return absl::StrCat("the hub rejected the request as invalid (INVALID_ARGUMENT: ",
                          status.error_message(), ")");
    default:
      return absl::StrCat("hub call failed (", text, ")");
  }
}

}  // namespace hsync::reporter
