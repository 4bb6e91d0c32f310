#include "hub/roster/roster_stream.h"

#include <utility>
#include <vector>

#include "hub/service/grpc_glue.h"

namespace hsync::hub {

RosterStreamReactor::RosterStreamReactor(std::string node_id, RosterStore* store,
                                         RosterStreamRegistry* registry)
    : node_id_(std::move(node_id)), store_(store), registry_(registry) {}

RosterStreamReactor* RosterStreamReactor::Start(
    std::string node_id, RosterStore* store, RosterStreamRegistry* registry,
    const hiddify_sync::v1::WatchRosterRequest& request) {
  std::shared_ptr<RosterStreamReactor> stream(
      new RosterStreamReactor(std::move(node_id), store, registry));
  stream->self_ = stream;
  stream->StartFrom(request);
  if (!registry->Add(stream)) {
    stream->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "hub is shutting down"));
    return stream.get();
  }
  store->AddWatcher(stream.get());
  stream->SendNext();  // the full roster, if the first read of the parent has succeeded
  return stream.get();
}

void RosterStreamReactor::StartFrom(const hiddify_sync::v1::WatchRosterRequest& request) {
  absl::MutexLock lock(&mu_);
  chunked_ = request.accepts_chunks();
  if (request.roster_epoch() == 0 || request.roster_epoch() != store_->epoch()) return;
  if (request.resume_full_version() != 0) {
    if (!chunked_) return;
    std::shared_ptr<const FullRosterSnapshot> snapshot =
        store_->FullSnapshotAt(request.resume_full_version());
    if (snapshot == nullptr || request.resume_next_chunk() >= snapshot->chunk_count()) return;
    snapshot_ = std::move(snapshot);
    next_chunk_ = request.resume_next_chunk();
    registry_->CountResumed();
    return;
  }
  if (request.have_version() != 0 && store_->HasDeltasAfter(request.have_version())) {
    sent_version_.store(request.have_version());
    registry_->CountResumed();
  }
}

void RosterStreamReactor::SendNext() {
  {
    absl::MutexLock lock(&mu_);
    if (writing_ || end_requested_) return;
    if (snapshot_ == nullptr) {
      std::shared_ptr<const EncodedRosterUpdate> next = store_->NextUpdate(sent_version_.load());
      if (next == nullptr) return;
      if (!next->full || !chunked_) {
        writing_ = true;
        in_flight_version_ = next->version;
        in_flight_full_ = next->full;
        in_flight_bytes_ = next->message.total_size;
        out_ = ToByteBuffer(next->message);
      } else {
        snapshot_ = store_->FullSnapshot();
        next_chunk_ = 0;
        if (snapshot_ == nullptr) return;
      }
    }
    if (!writing_) {
      EncodedMessage chunk = snapshot_->Chunk(next_chunk_);
      writing_ = true;
      in_flight_version_ = snapshot_->version;
      in_flight_full_ = true;
      in_flight_bytes_ = chunk.total_size;
      out_ = ToByteBuffer(chunk);
    }
  }
  StartWrite(&out_);
}

void RosterStreamReactor::OnRosterChanged(uint64_t /*version*/) { SendNext(); }

void RosterStreamReactor::OnWriteDone(bool ok) {
  grpc::Status finish_with;
  bool finish = false;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    out_.Clear();
    if (!ok) {
      // The client went away or the call was cancelled.
      if (!end_requested_) {
        end_requested_ = true;
        end_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "roster stream write failed");
      }
      finish = true;
      finish_with = end_status_;
    } else {
      bool completed = true;
      if (snapshot_ != nullptr) {
        ++next_chunk_;
        completed = next_chunk_ >= snapshot_->chunk_count();
        if (completed) snapshot_.reset();
      }
      if (completed) sent_version_.store(in_flight_version_);
      registry_->CountSent(in_flight_full_ && completed, !in_flight_full_, in_flight_bytes_);
      if (end_requested_) {
        finish = true;
        finish_with = end_status_;
      }
    }
  }
  if (finish) {
    Finish(finish_with);
    return;
  }
  SendNext();
}

void RosterStreamReactor::End(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (end_requested_) return;
    end_requested_ = true;
    end_status_ = status;
    if (writing_) return;  // OnWriteDone finishes
  }
  Finish(status);
}

void RosterStreamReactor::OnCancel() {
  End(grpc::Status(grpc::StatusCode::CANCELLED, "roster stream cancelled"));
}

void RosterStreamReactor::OnDone() {
  store_->RemoveWatcher(this);
  registry_->Remove(this);
  std::shared_ptr<RosterStreamReactor> last = std::move(self_);
  // `this` may be deleted when `last` goes out of scope.
}

bool RosterStreamRegistry::Add(const std::shared_ptr<RosterStreamReactor>& stream) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  streams_[stream.get()] = stream;
  return true;
}

void RosterStreamRegistry::Remove(const RosterStreamReactor* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void RosterStreamRegistry::EndAll(const grpc::Status& status) {
  std::vector<std::shared_ptr<RosterStreamReactor>> open;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (auto& [key, weak] : streams_) {
      if (auto stream = weak.lock()) open.push_back(std::move(stream));
    }
  }
  // Outside the lock: ending a stream may run its OnDone right here.
  for (auto& stream : open) stream->End(status);
}

void RosterStreamRegistry::EndWhere(const std::function<bool(const std::string&)>& matches,
                                    const grpc::Status& status) {
  std::vector<std::shared_ptr<RosterStreamReactor>> open;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, weak] : streams_) {
      if (auto stream = weak.lock(); stream != nullptr && matches(stream->node_id())) {
        open.push_back(std::move(stream));
      }
    }
  }
  for (auto& stream : open) stream->End(status);
}

std::map<std::string, NodeStreams> RosterStreamRegistry::ByNode() const {
  std::vector<std::shared_ptr<RosterStreamReactor>> open;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, weak] : streams_) {
      if (auto stream = weak.lock()) open.push_back(std::move(stream));
    }
  }
  std::map<std::string, NodeStreams> out;
  for (const auto& stream : open) {
    NodeStreams& node = out[stream->node_id()];
    ++node.open;
    node.max_sent_version = std::max(node.max_sent_version, stream->sent_version());
  }
  return out;
}

void RosterStreamRegistry::CountSent(bool full_completed, bool delta, size_t bytes) {
  if (full_completed) full_sent_.fetch_add(1);
  if (delta) deltas_sent_.fetch_add(1);
  bytes_sent_.fetch_add(bytes);
}

void RosterStreamRegistry::CountResumed() { resumed_.fetch_add(1); }

RosterStreamTotals RosterStreamRegistry::Totals() const {
  return RosterStreamTotals{full_sent_.load(), deltas_sent_.load(), bytes_sent_.load(),
                            resumed_.load()};
}

size_t RosterStreamRegistry::open() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

}  // namespace hsync::hub
