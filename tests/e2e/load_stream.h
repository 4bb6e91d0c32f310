// One simulated child for the load benchmark: it talks to the hub exactly as
// a reporter does — its node token, one stream id, seq 1, 2, 3, ..., a
// ReportUsage with one usage per active user every interval, the same report
// resent until acknowledged — and keeps a WatchRoster stream open, consuming
// updates. It records ack latencies, bytes acknowledged per user, and for a
// few watched users the cumulative bytes acknowledged per report (with the
// report's collected_at), for end-to-end latency.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"

namespace hsync::e2e {

struct LoadStreamOptions {
  std::string node_id;
  std::string token;
  std::string target;                // the hub, host:port
  std::vector<std::string> users;    // reported in every report
  std::set<std::string> watched;     // subset of users tracked for end-to-end latency
  uint64_t max_bytes = 1'000'000;    // per user per report, uniform in [1, max]
  absl::Duration interval = absl::Seconds(5);
  absl::Duration phase;              // first report after this
  bool watch_roster = true;
  uint64_t seed = 1;
  // Users whose cut (a roster update showing them not active) is timed.
  std::set<std::string> cut_watched;
};

// A report of a watched user: its bytes are on the parent once the parent's
// value reaches base + cumulative.
struct WatchedReport {
  std::string uuid;
  absl::Time collected_at;
  uint64_t cumulative = 0;  // bytes acknowledged for this user up to this report
};

class LoadStream {
 public:
  explicit LoadStream(LoadStreamOptions options);
  ~LoadStream();  // Stop()s

  void Start();
  // Finishes the report in flight (until acknowledged), then returns.
  void Stop();

  // Ack latencies (ms) since the last call.
  std::vector<double> TakeAckLatencies();
  // Watched reports acknowledged since the last call.
  std::vector<WatchedReport> TakeWatched();
  uint64_t reports_acked() const { return reports_acked_.load(); }
  uint64_t failed_calls() const { return failed_calls_.load(); }
  uint64_t roster_updates() const { return roster_updates_.load(); }
  // When a roster update first showed each cut_watched user not active.
  std::map<std::string, absl::Time> cuts_seen();
  // Bytes acknowledged per user (call after Stop()).
  const std::map<std::string, uint64_t>& acked_bytes() const { return acked_; }

 private:
  void ReportLoop();
  void RosterLoop();

  LoadStreamOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> stub_;
  std::mt19937_64 rng_;
  uint64_t stream_id_ = 0;
  uint64_t seq_ = 0;
  std::map<std::string, uint64_t> acked_;  // report thread only until Stop()

  std::mutex mu_;
  std::vector<double> latencies_ms_;
  std::vector<WatchedReport> watched_;

  std::atomic<uint64_t> reports_acked_{0};
  std::atomic<uint64_t> failed_calls_{0};
  std::atomic<uint64_t> roster_updates_{0};
  absl::Notification stop_;
  std::map<std::string, absl::Time> cuts_seen_;  // guarded by mu_
  std::mutex roster_mu_;
  grpc::ClientContext* roster_context_ = nullptr;  // guarded by roster_mu_
  std::thread report_thread_;
  std::thread roster_thread_;
};

}  // namespace hsync::e2e
