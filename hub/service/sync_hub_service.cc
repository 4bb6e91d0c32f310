#include "hub/service/sync_hub_service.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "hub/service/grpc_glue.h"
#include "hub/service/report_validator.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::GetStatusRequest;
using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::ReportAck;
using hiddify_sync::v1::UsageReport;
using hiddify_sync::v1::WatchRosterRequest;

const grpc::Status kShuttingDown(grpc::StatusCode::UNAVAILABLE, "hub is shutting down");

// A stream refused before it started.
class RefusedStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

SyncHubService::SyncHubService(SyncHubServiceDeps deps) : deps_(std::move(deps)) {}

absl::StatusOr<std::string> SyncHubService::Authenticate(const grpc::CallbackServerContext& context) {
  if (deps_.limiter != nullptr && deps_.limiter->Blocked(context.peer())) {
    return absl::ResourceExhaustedError(
        "too many failed authentications from this address; try again in a minute");
  }
  absl::StatusOr<std::string> node = deps_.auth->Authenticate(ClientMetadata(context, "authorization"));
  if (!node.ok()) {
    {
      absl::MutexLock lock(&mu_);
      ++counters_.auth_failures;
    }
    if (deps_.limiter != nullptr) deps_.limiter->RecordFailure(context.peer());
  }
  return node;
}

absl::StatusOr<std::string> SyncHubService::AuthenticateOrOperator(
    const grpc::CallbackServerContext& context) {
  if (ClientMetadata(context, "authorization").empty() && IsUnixSocketPeer(context.peer())) {
    return std::string();
  }
  return Authenticate(context);
}

void SyncHubService::CountRejected(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  ++counters_.rejected;
  ++live_[node_id].rejected;
}

grpc::ServerUnaryReactor* SyncHubService::ReportUsage(grpc::CallbackServerContext* context,
                                                      const UsageReport* request,
                                                      ReportAck* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (shutting_down_.load()) {
    reactor->Finish(kShuttingDown);
    return reactor;
  }
  absl::StatusOr<std::string> node = Authenticate(*context);
  if (!node.ok()) {
    reactor->Finish(ToGrpcStatus(node.status()));
    return reactor;
  }
  if (!request->node_id().empty() && request->node_id() != *node) {
    CountRejected(*node);
    LogWarning(absl::StrCat("refused a report from node ", *node, " claiming node_id \"",
                            request->node_id().substr(0, 64), "\""));
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 absl::StrCat("this token belongs to node \"", *node,
                                              "\", not to node_id \"",
                                              request->node_id().substr(0, 64), "\"")));
    return reactor;
  }
  if (absl::Status valid = ValidateReport(*request, absl::Now()); !valid.ok()) {
    CountRejected(*node);
    LogWarning(absl::StrCat("refused a report from node ", *node, " (stream ", request->stream_id(),
                            ", seq ", request->seq(), "): ", valid.message()));
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  const bool queued = deps_.pool->Submit([this, reactor, request, response, node_id = *node] {
    absl::StatusOr<AcceptResult> result = deps_.journal->Accept(*request);
    if (!result.ok()) {
      // AlreadyExists: a rolled-back reporter, refused on purpose (the journal logs it once).
      if (!absl::IsAlreadyExists(result.status())) {
        LogError(absl::StrCat("journal: accepting a report of node ", node_id, " failed: ",
                              result.status().ToString()));
      }
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      if (result->duplicate) {
        ++counters_.duplicates;
      } else {
        ++counters_.reports_accepted;
      }
    }
    response->set_acked_seq(result->acked_seq);
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) reactor->Finish(kShuttingDown);
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* SyncHubService::WatchRoster(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  if (shutting_down_.load()) return new RefusedStream(kShuttingDown);
  absl::StatusOr<std::string> node = Authenticate(*context);
  if (!node.ok()) return new RefusedStream(ToGrpcStatus(node.status()));
  WatchRosterRequest parsed;
  grpc::ByteBuffer copy = *request;
  if (!grpc::SerializationTraits<WatchRosterRequest>::Deserialize(&copy, &parsed).ok()) {
    return new RefusedStream(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed WatchRosterRequest"));
  }
  if (parsed.node_id().empty()) {
    return new RefusedStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node_id is empty"));
  }
  if (parsed.node_id() != *node) {
    return new RefusedStream(grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("this token belongs to node \"", *node, "\", not to node_id \"",
                     parsed.node_id().substr(0, 64), "\"")));
  }
  return RosterStreamReactor::Start(*std::move(node), deps_.roster, &streams_, parsed);
}

grpc::ServerUnaryReactor* SyncHubService::GetRoster(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* /*request*/,
                                                    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (shutting_down_.load()) {
    reactor->Finish(kShuttingDown);
    return reactor;
  }
  absl::StatusOr<std::string> caller = AuthenticateOrOperator(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  // Encoding copies the roster once: keep it off gRPC's threads.
  const bool queued = deps_.pool->Submit([this, reactor, response] {
    *response = ToByteBuffer(deps_.roster->EncodeSnapshot());
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) reactor->Finish(kShuttingDown);
  return reactor;
}

grpc::ServerUnaryReactor* SyncHubService::GetStatus(grpc::CallbackServerContext* context,
                                                    const GetStatusRequest* /*request*/,
                                                    HubStatus* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> caller = AuthenticateOrOperator(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  const bool queued = deps_.pool->Submit([this, reactor, response] {
    absl::StatusOr<HubStatus> status = deps_.status();
    if (!status.ok()) {
      reactor->Finish(ToGrpcStatus(status.status()));
      return;
    }
    *response = *std::move(status);
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) reactor->Finish(kShuttingDown);
  return reactor;
}

void SyncHubService::BeginShutdown() {
  shutting_down_.store(true);
  streams_.EndAll(kShuttingDown);
}

void SyncHubService::EndStreamsOfUnknownNodes() {
  const std::vector<std::string> ids = deps_.auth->NodeIds();
  const std::set<std::string> known(ids.begin(), ids.end());
  streams_.EndWhere([&known](const std::string& node_id) { return !known.contains(node_id); },
                    grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "node removed from the hub"));
}

std::map<std::string, NodeLiveState> SyncHubService::LiveNodes() const {
  std::map<std::string, NodeLiveState> out;
  {
    absl::MutexLock lock(&mu_);
    out = live_;
  }
  for (const auto& [node_id, streams] : streams_.ByNode()) {
    NodeLiveState& node = out[node_id];
    node.open_roster_streams = streams.open;
    node.roster_version_sent = streams.max_sent_version;
  }
  return out;
}

ServiceCounters SyncHubService::Counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

}  // namespace hsync::hub
