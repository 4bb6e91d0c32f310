// A whole system for the reporter's end-to-end tests, every part real and
// separate processes: the shared test MariaDB; a panelsim parent (demo users);
// the hiddify-sync-hub binary (plaintext on loopback, its own journal); a
// panelsim child generating traffic into its own database (the panel's
// read-modify-write with a gap) and counting apply_users calls; and the
// hiddify-sync-reporter binary on that child.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/reporter_status.pb.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "tests/reporter/reporter_process.h"
#include "tests/support/child_process.h"
#include "tests/support/panelsim_runner.h"

namespace hsync::testing {

struct E2eOptions {
  int parent_users = 20;
  std::string node_id = "child-1";
  std::string token = "e2e-node-token";
  std::string reporter_token;     // what the reporter presents; empty = `token`
  int traffic_interval_ms = 100;
  int traffic_users_per_tick = 4;
  uint64_t traffic_max_bytes = 5'000'000;
  int traffic_rmw_gap_ms = 20;
  std::string reporter_extra;     // more reporter TOML
  std::string reporter_apply_extra;  // more [apply] lines of the reporter
  std::string reporter_metrics_listen;  // [metrics] listen of the reporter; "" = off
  std::vector<std::string> child_extra_args;  // more panelsim flags for the child (e.g. --generation)
};

// The hiddify-sync-hub binary: config and journal in a temp dir.
class HubProcess {
 public:
  HubProcess(std::string parent_url, std::string parent_api_key,
             std::map<std::string, std::string> node_tokens);
  ~HubProcess();
  absl::Status Start();  // waits until GetStatus answers
  void Kill();           // SIGKILL
  bool Running();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Its operator socket (GetStatus/GetRoster without a token), in its temp dir.
  std::string operator_socket() const { return dir_ + "/hub.sock"; }
  // GetStatus over the operator socket.
  absl::StatusOr<hiddify_sync::v1::HubStatus> Status();
  std::string Log() const;

 private:
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

class E2eSystem {
 public:
  static absl::StatusOr<std::unique_ptr<E2eSystem>> Start(E2eOptions options);
  ~E2eSystem();

  PanelsimRunner& parent() { return *parent_; }
  PanelsimRunner& child() { return *child_; }
  HubProcess& hub() { return *hub_; }
  ReporterProcess& reporter() { return *reporter_; }
  const std::string& child_db() const { return child_->options().database; }

  absl::StatusOr<hiddify_sync::v1::ReporterStatusReply> ReporterStatus();
  // current_usage per uuid straight from the parent's / child's table.
  absl::StatusOr<std::map<std::string, uint64_t>> ParentUsage();
  absl::StatusOr<std::map<std::string, uint64_t>> ChildUsage();
  // One column of a user on the child ("" when missing).
  std::string ChildColumn(const std::string& uuid, const std::string& column);
  // Bytes panelsim's traffic generator wrote on the child, per uuid.
  absl::StatusOr<std::map<std::string, uint64_t>> Generated();
  absl::Status SetTraffic(bool enabled);
  // Waits until the child has every parent user the roster brought.
  absl::Status WaitRosterApplied(absl::Duration timeout);
  // Waits until the reporter collected after `since` with an empty outbox and
  // the hub has nothing pending (everything is on the parent).
  absl::Status WaitSettled(absl::Time since, absl::Duration timeout);
  // Checks parent increase == generated, per user and in total; describes
  // differences. `before` is ParentUsage() at the start.
  absl::Status CheckExact(const std::map<std::string, uint64_t>& before);

 private:
  E2eSystem() = default;
  E2eOptions options_;
  std::unique_ptr<PanelsimRunner> parent_;
  std::unique_ptr<PanelsimRunner> child_;
  std::unique_ptr<HubProcess> hub_;
  std::unique_ptr<ReporterProcess> reporter_;
  std::shared_ptr<grpc::Channel> status_channel_;
};

}  // namespace hsync::testing
