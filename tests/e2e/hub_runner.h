// The real hiddify-sync-hub binary as part of an end-to-end system: a config
// in a temp dir (plaintext on loopback, journal and operator socket in the
// same dir, one token per node), the process (SIGKILL and restart on the same
// port and journal), and GetStatus over the operator socket (no token).
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "tests/support/child_process.h"

namespace hsync::e2e {

struct HubRunnerOptions {
  std::string parent_url;      // http://127.0.0.1:PORT/<proxy path>
  std::string parent_api_key;
  std::map<std::string, std::string> node_tokens;  // node id -> token (the hub gets hashes)
  std::string apply_interval = "200ms";
  std::string max_apply_delay = "1s";
  std::string roster_poll_interval = "1s";
  // 0 = unlimited: tests with short intervals are not about the PATCH budget.
  int max_patches_per_minute = 0;
  std::string urgent_horizon = "120s";
  double max_list_share = 0.1;
  std::string parent_timeout = "3s";
  std::string parent_toml = "";  // appended verbatim inside [parent] (e.g. write = "database")
  std::string log_level = "info";
  std::string metrics_listen = "";  // [metrics] listen; "" = off (the default port may be taken)
};

class HubRunner {
 public:
  // Writes the config, starts the hub and waits until GetStatus answers.
  static absl::StatusOr<std::unique_ptr<HubRunner>> Start(HubRunnerOptions options);
  ~HubRunner();  // SIGKILL

  int port() const { return port_; }
  std::string target() const;
  const std::string& dir() const { return dir_; }
  std::string operator_socket() const { return dir_ + "/hub.sock"; }
  // The hub's pid, or -1 when it is not running.
  int pid();
  bool Running();

  // SIGKILL and reap (no-op when not running).
  void Kill();
  // Starts it again on the same port and journal; waits until it answers.
  absl::Status Restart();

  absl::StatusOr<hiddify_sync::v1::HubStatus> Status(absl::Duration timeout = absl::Seconds(5));
  // The last `bytes` of the hub's log.
  std::string LogTail(size_t bytes = 4000) const;

 private:
  HubRunner() = default;
  absl::Status WriteConfig();
  absl::Status Launch();

  HubRunnerOptions options_;
  std::string dir_;
  int port_ = 0;
  std::optional<hsync::testing::ChildProcess> process_;
  std::shared_ptr<grpc::Channel> channel_;  // to the operator socket
};

// A channel to the hub with quick reconnects and no message size limits.
std::shared_ptr<grpc::Channel> MakeE2eChannel(const std::string& target);

}  // namespace hsync::e2e
