// One open WatchRoster stream, as a gRPC callback reactor: no thread of its
// own. It is a RosterWatcher of the RosterStore; on every new version (and
// after each write completes) it asks the store for the next update it needs
// — the full roster first, then each delta in version order — and writes it.
// At most one write is in flight; a slow stream is simply behind, and the
// store hands it a full update once its next delta has left the history.
// The request says where the reporter stands (WatchRosterRequest fields 2-6):
// a version of this hub run (epoch) still followed by the history gets the
// deltas after it, no full roster; a reporter that accepts chunks gets a full
// roster as one message per bucket, and one that broke off a chunked full
// roster resumes at the chunk it names while the store still keeps that
// version's snapshot (else the full roster starts over at chunk 0).
//
// RosterStreamRegistry knows every open stream (status per node, shutdown).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "hub/roster/roster_store.h"

namespace hsync::hub {

class RosterStreamRegistry;

class RosterStreamReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                                  public RosterWatcher,
                                  public std::enable_shared_from_this<RosterStreamReactor> {
 public:
  // Creates the reactor for an authenticated node's stream. It owns itself
  // until gRPC calls OnDone. Refused with UNAVAILABLE when the registry is
  // shutting down.
  static RosterStreamReactor* Start(std::string node_id, RosterStore* store,
                                    RosterStreamRegistry* registry,
                                    const hiddify_sync::v1::WatchRosterRequest& request = {});

  // Ends the stream with `status` once the write in flight (if any) is done.
  void End(const grpc::Status& status);

  const std::string& node_id() const { return node_id_; }
  // Highest version fully written to this stream (0 = nothing yet).
  uint64_t sent_version() const { return sent_version_.load(); }

  void OnRosterChanged(uint64_t version) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  RosterStreamReactor(std::string node_id, RosterStore* store, RosterStreamRegistry* registry);
  // Where to start, from the reporter's request (before the first write).
  void StartFrom(const hiddify_sync::v1::WatchRosterRequest& request);
  void SendNext();

  const std::string node_id_;
  RosterStore* const store_;
  RosterStreamRegistry* const registry_;
  std::shared_ptr<RosterStreamReactor> self_;  // released in OnDone
  std::atomic<uint64_t> sent_version_{0};

  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool end_requested_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  uint64_t in_flight_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_flight_full_ ABSL_GUARDED_BY(mu_) = false;
  size_t in_flight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool chunked_ ABSL_GUARDED_BY(mu_) = false;
  // A chunked full roster being sent, and its next chunk.
  std::shared_ptr<const FullRosterSnapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  size_t next_chunk_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ByteBuffer out_;  // owned by the write in flight
};

struct NodeStreams {
  uint32_t open = 0;
  uint64_t max_sent_version = 0;
};

// What every stream sent since start (status, metrics, benchmarks).
struct RosterStreamTotals {
  uint64_t full_sent = 0;     // full rosters completed (all chunks)
  uint64_t deltas_sent = 0;
  uint64_t bytes_sent = 0;    // encoded RosterUpdate bytes
  uint64_t resumed = 0;       // streams that started from a held version or chunk
};

class RosterStreamRegistry {
 public:
  // False after EndAll (the stream must be refused).
  bool Add(const std::shared_ptr<RosterStreamReactor>& stream);
  void Remove(const RosterStreamReactor* stream);
  // Ends every open stream with `status` and refuses new ones.
  void EndAll(const grpc::Status& status);
  // Ends the open streams whose node `matches` (e.g. a revoked node).
  void EndWhere(const std::function<bool(const std::string& node_id)>& matches,
                const grpc::Status& status);
  std::map<std::string, NodeStreams> ByNode() const;
  size_t open() const;

  // Counted by the streams.
  void CountSent(bool full_completed, bool delta, size_t bytes);
  void CountResumed();
  RosterStreamTotals Totals() const;

 private:
  std::atomic<uint64_t> full_sent_{0};
  std::atomic<uint64_t> deltas_sent_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> resumed_{0};
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<const RosterStreamReactor*, std::weak_ptr<RosterStreamReactor>> streams_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::hub
