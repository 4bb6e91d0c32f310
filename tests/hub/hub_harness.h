// Running the real hiddify-sync-hub binary in tests: a config file in a temp
// dir, the process (restartable on the same port and journal, killable with
// SIGKILL), a gRPC channel to its TCP port (where every call needs a node
// token) and one to its operator socket (<dir>/hub.sock, where GetStatus and
// GetRoster need none), and simulated children that report usage with their
// node token the way a reporter does.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "tests/support/child_process.h"

namespace hsync::hub::testing {

struct HubSetup {
  std::string parent_url = "http://127.0.0.1:1/proxy";  // nothing listens there
  std::string parent_api_key = "00000000-0000-4000-8000-000000000000";
  std::map<std::string, std::string> node_tokens = {};  // node id -> token (the hub gets hashes)
  std::string apply_interval = "100ms";
  std::string max_apply_delay = "0s";
  uint64_t urgent_margin_bytes = 100u << 20;
  // 0 = unlimited: tests with short intervals are not about the PATCH budget.
  uint32_t max_patches_per_minute = 0;
  std::string poll_interval = "30s";
  // [roster] usage_interval: "0s" (at once) unless a test is about coalescing.
  std::string usage_interval = "0s";
  std::string parent_timeout = "3s";
  std::string log_level = "info";
  std::string parent_toml = "";  // appended verbatim inside [parent] (e.g. write = "database")
  std::string extra_toml = "";  // appended verbatim
  std::string journal_toml = "";  // appended verbatim inside [journal]
  std::string metrics_listen = "";  // [metrics] listen; "" = off (the default port may be taken)
  // operator_socket: relative to the hub's temp dir, or absolute; "" = off.
  std::string operator_socket = "hub.sock";
};

// "node-<i>" -> "token-of-node-<i>-<random>" for i in [0, n).
std::map<std::string, std::string> MakeNodeTokens(int n);

class HubProcess {
 public:
  // Writes hub.toml into a fresh dir, starts the binary, waits until the
  // health service answers SERVING.
  static absl::StatusOr<std::unique_ptr<HubProcess>> Start(HubSetup setup);
  ~HubProcess();

  // Changes take effect at the next Restart().
  HubSetup& setup() { return setup_; }
  // Starts the binary again (same dir, journal and port) after Kill/Terminate.
  absl::Status Restart();
  // SIGKILL, reaped.
  void Kill();
  // SIGTERM; the exit code.
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(20));
  bool Running();
  // Sends `signal` (e.g. SIGHUP) without waiting.
  bool Signal(int signal);
  int pid() const { return process_.has_value() ? process_->pid() : -1; }

  std::string target() const;
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string ReadLog() const;

  // One channel for the test's lifetime (it reconnects across restarts).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> Stub() const;
  // The operator socket's path (never the default /run one) and a channel to it.
  std::string operator_socket() const {
    if (setup_.operator_socket.empty() || setup_.operator_socket.front() == '/') {
      return setup_.operator_socket;
    }
    return absl::StrCat(dir_, "/", setup_.operator_socket);
  }
  std::shared_ptr<grpc::Channel> operator_channel() const { return operator_channel_; }
  std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> OperatorStub() const;
  // GetStatus over the operator socket, without a token.
  absl::StatusOr<hiddify_sync::v1::HubStatus> Status() const;
  // Waits until nothing is pending in the journal (and no open intent holds bytes).
  bool WaitUntilApplied(absl::Duration timeout);

 private:
  HubProcess() = default;
  absl::Status WriteConfig();
  absl::Status Launch();

  HubSetup setup_;
  std::string dir_;
  std::string config_path_;
  int port_ = 0;
  std::optional<hsync::testing::ChildProcess> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> operator_channel_;
};

// Channel with room for big roster updates.
std::shared_ptr<grpc::Channel> MakeHubChannel(const std::string& target);
void AddBearer(grpc::ClientContext* context, const std::string& token);
// Deterministic lower-case canonical uuid for test user `i` (of test `salt`).
std::string TestUserUuid(int i, int salt = 0);

// Runs `<prefix...> hiddify-sync-hub <args>` to completion (30 s at most);
// the exit code (-1 when it could not run), stdout+stderr in `*output`. The
// output goes to a world-writable temp dir, so a `prefix` that drops
// privileges (setpriv) works too.
int RunHubCommand(const std::vector<std::string>& args, std::string* output,
                  const std::vector<std::string>& prefix = {});

// One child's reporter: one stream (random id), seq 1, 2, 3, ...; a report is
// resent until the hub acknowledges it, as the real reporter does.
class SimulatedChild {
 public:
  SimulatedChild(std::string node_id, std::string token, std::shared_ptr<grpc::Channel> channel);

  using Deltas = std::vector<std::pair<std::string, uint64_t>>;  // uuid, bytes
  // The next report of the stream (seq = last + 1), not sent.
  hiddify_sync::v1::UsageReport Next(const Deltas& deltas);
  // One attempt.
  grpc::Status Send(const hiddify_sync::v1::UsageReport& report, hiddify_sync::v1::ReportAck* ack,
                    absl::Duration timeout = absl::Seconds(10));
  // Sends until acknowledged (UNAVAILABLE/DEADLINE_EXCEEDED are retried until
  // `timeout`); returns the acked seq or the last error.
  absl::StatusOr<uint64_t> SendUntilAcked(const hiddify_sync::v1::UsageReport& report,
                                          absl::Duration timeout = absl::Seconds(60));
  // Next() + SendUntilAcked().
  absl::StatusOr<uint64_t> Report(const Deltas& deltas);
  // A new stream id (the reporter's state was lost); seq restarts at 1.
  void NewStream();

  const std::string& node_id() const { return node_id_; }
  uint64_t stream_id() const { return stream_id_; }

 private:
  std::string node_id_;
  std::string token_;
  std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> stub_;
  absl::BitGen rng_;
  uint64_t stream_id_ = 0;
  uint64_t seq_ = 0;
};

// A reporter's WatchRoster stream on gRPC's client callback API (no thread of
// its own): applies every update to its copy of the roster and checks that
// deltas come in version order without gaps.
class RosterFollower : public grpc::ClientReadReactor<hiddify_sync::v1::RosterUpdate> {
 public:
  struct State {
    uint64_t version = 0;
    int updates = 0;
    int full_updates = 0;
    int gaps = 0;                  // deltas whose version was not last + 1
    int deltas = 0;                // deltas that followed the version held
    int usage_updates = 0;         // UsageUpdate entries received
    int chunks = 0;                // chunks of chunked full rosters
    uint32_t chunk_count = 0;
    uint32_t last_chunk_index = 0;
    bool first_full = false;       // the stream's first message was a full roster (chunk)
    uint32_t first_chunk_index = 0;
    uint64_t epoch = 0;
    uint64_t bytes_received = 0;
    size_t users = 0;              // size of the follower's roster
    std::map<std::string, hiddify_sync::v1::User> by_uuid;  // empty unless keep_users
    bool done = false;
    grpc::Status status;
  };

  // Opens the stream. `keep_users` = false keeps only counts (benchmarks).
  RosterFollower(hiddify_sync::v1::SyncHub::Stub* stub, const std::string& node_id,
                 const std::string& token, bool keep_users = true);
  // With the reporter's fields of `request` (position, chunks, resume); the
  // stream is cancelled after `cancel_after_chunks` chunks (0 = never).
  RosterFollower(hiddify_sync::v1::SyncHub::Stub* stub, const std::string& node_id,
                 const std::string& token, const hiddify_sync::v1::WatchRosterRequest& request,
                 bool keep_users = true, int cancel_after_chunks = 0);
  // Cancels the stream and waits until it is done.
  ~RosterFollower() override;

  State Snapshot() const;
  // Waits until `predicate(state)` holds; false on timeout.
  bool WaitUntil(const std::function<bool(const State&)>& predicate, absl::Duration timeout) const;
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  const bool keep_users_;
  const int cancel_after_chunks_ = 0;
  grpc::ClientContext context_;
  hiddify_sync::v1::WatchRosterRequest request_;
  hiddify_sync::v1::RosterUpdate update_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> uuids_ ABSL_GUARDED_BY(mu_);  // when !keep_users
};

}  // namespace hsync::hub::testing
