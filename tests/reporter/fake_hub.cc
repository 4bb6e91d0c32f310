#include "tests/reporter/fake_hub.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace hsync::testing {

std::unique_ptr<FakeHub> FakeHub::Start(std::string token, int port) {
  return Listen(std::move(token), port, grpc::InsecureServerCredentials());
}

std::unique_ptr<FakeHub> FakeHub::StartTls(std::string token, const std::string& cert_pem,
                                           const std::string& key_pem,
                                           const std::string& client_ca_pem) {
  grpc::SslServerCredentialsOptions options(
      client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = client_ca_pem;
  options.pem_key_cert_pairs.push_back({key_pem, cert_pem});
  return Listen(std::move(token), 0, grpc::SslServerCredentials(options));
}

std::unique_ptr<FakeHub> FakeHub::Listen(std::string token, int port,
                                         std::shared_ptr<grpc::ServerCredentials> creds) {
  std::unique_ptr<FakeHub> hub(new FakeHub(std::move(token)));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), creds, &hub->port_);
  builder.RegisterService(hub.get());
  hub->server_ = builder.BuildAndStart();
  if (hub->server_ == nullptr || hub->port_ == 0) return nullptr;
  return hub;
}

FakeHub::~FakeHub() { Shutdown(); }

void FakeHub::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
  }
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    server_->Wait();
    server_.reset();
  }
}

bool FakeHub::Authorized(grpc::ServerContext* context) {
  auto it = context->client_metadata().find("authorization");
  const bool ok = it != context->client_metadata().end() &&
                  std::string(it->second.data(), it->second.size()) == "Bearer " + token_;
  if (!ok) {
    absl::MutexLock lock(&mu_);
    ++unauthenticated_;
  }
  return ok;
}

grpc::Status FakeHub::ReportUsage(grpc::ServerContext* context,
                                  const hiddify_sync::v1::UsageReport* request,
                                  hiddify_sync::v1::ReportAck* reply) {
  if (!Authorized(context)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
  absl::MutexLock lock(&mu_);
  ++calls_;
  if (reject_seq_ != 0 && request->seq() == reject_seq_) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "usages[0]: rejected by the test");
  }
  uint64_t& acked = acked_[request->stream_id()];
  const std::string payload = request->SerializeAsString();
  const auto key = std::make_pair(request->stream_id(), request->seq());
  if (request->seq() > acked) {
    acked = request->seq();
    accepted_.push_back(*request);
    payloads_[key] = payload;
  } else if (refuse_changed_ && payloads_.contains(key) && payloads_[key] != payload) {
    ++refused_;
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        absl::StrCat("seq ", request->seq(), " of stream ", request->stream_id(),
                                     " was accepted before with a different payload: this "
                                     "reporter's state was rolled back (test hub)"));
  }
  reply->set_acked_seq(acked);
  return grpc::Status::OK;
}

grpc::Status FakeHub::WatchRoster(grpc::ServerContext* context,
                                  const hiddify_sync::v1::WatchRosterRequest* request,
                                  grpc::ServerWriter<hiddify_sync::v1::RosterUpdate>* writer) {
  if (!Authorized(context)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
  Watcher watcher;
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(*request);
    if (roster_.has_value()) watcher.queue.push_back(*roster_);
    watchers_.push_back(&watcher);
  }
  grpc::Status result = grpc::Status::OK;
  while (true) {
    std::vector<hiddify_sync::v1::RosterUpdate> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !watcher.queue.empty() || shutting_down_ || watcher.broken;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(50));
      if (shutting_down_ || watcher.broken) {
        result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
        break;
      }
      batch.swap(watcher.queue);
    }
    if (context->IsCancelled()) break;
    bool ok = true;
    for (const auto& u : batch) ok = ok && writer->Write(u);
    if (!ok) break;
  }
  absl::MutexLock lock(&mu_);
  watchers_.erase(std::find(watchers_.begin(), watchers_.end(), &watcher));
  return result;
}

void FakeHub::RejectSeq(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  reject_seq_ = seq;
}

void FakeHub::RefuseChangedPayloads(bool refuse) {
  absl::MutexLock lock(&mu_);
  refuse_changed_ = refuse;
}

int FakeHub::refused_calls() {
  absl::MutexLock lock(&mu_);
  return refused_;
}

std::vector<hiddify_sync::v1::UsageReport> FakeHub::Accepted() {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

std::map<std::string, uint64_t> FakeHub::BytesByUuid() {
  std::map<std::string, uint64_t> out;
  for (const auto& r : Accepted()) {
    for (const auto& u : r.usages()) {
      if (u.bytes() > 0) out[u.uuid()] += u.bytes();
    }
  }
  return out;
}

int FakeHub::calls() {
  absl::MutexLock lock(&mu_);
  return calls_;
}

int FakeHub::unauthenticated_calls() {
  absl::MutexLock lock(&mu_);
  return unauthenticated_;
}

void FakeHub::SetRoster(const hiddify_sync::v1::RosterUpdate& full) {
  absl::MutexLock lock(&mu_);
  roster_ = full;
}

std::vector<hiddify_sync::v1::WatchRosterRequest> FakeHub::roster_requests() {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void FakeHub::BreakWatchers() {
  absl::MutexLock lock(&mu_);
  for (Watcher* w : watchers_) w->broken = true;
}

void FakeHub::Broadcast(const hiddify_sync::v1::RosterUpdate& update) {
  absl::MutexLock lock(&mu_);
  for (Watcher* w : watchers_) w->queue.push_back(update);
}

int FakeHub::open_watchers() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(watchers_.size());
}

}  // namespace hsync::testing
