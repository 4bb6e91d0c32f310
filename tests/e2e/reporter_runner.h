// The real hiddify-sync-reporter binary as part of an end-to-end system: its
// config and token in a temp dir (plaintext hub address, the child panel's
// database and a state database, collect interval, min_report_bytes, apply via
// the child panelsim's /_sim/apply_users), the process (SIGKILL, start again
// on the same state), and its ReporterStatus service.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/reporter_status.grpc.pb.h"
#include "tests/support/child_process.h"

namespace hsync::e2e {

struct ReporterRunnerOptions {
  std::string node_id;
  std::string token;
  std::string hub_address;   // host:port (the test's proxy in front of the hub)
  std::string mysql_socket;
  std::string panel_database;
  std::string state_database;
  std::string collect_interval = "5s";  // the reporter's minimum
  uint64_t min_report_bytes = 1;
  std::string apply_command;            // [apply] command; empty: no apply runs
  std::string panel_address;            // the child panel's API; empty: core_sync = false
  std::string log_level = "info";
  std::string metrics_listen = "";  // [metrics] listen; "" = off
};

class ReporterRunner {
 public:
  // Writes the config; does not start the process.
  static absl::StatusOr<std::unique_ptr<ReporterRunner>> Create(ReporterRunnerOptions options);
  ~ReporterRunner();  // SIGKILL

  // Starts the process (again, on the same config and state).
  absl::Status Start();
  // SIGKILL and reap (no-op when not running).
  void Kill();
  bool Running();
  int pid();

  absl::StatusOr<hiddify_sync::v1::ReporterStatusReply> Status(
      absl::Duration timeout = absl::Seconds(3));
  std::string LogTail(size_t bytes = 4000) const;
  const ReporterRunnerOptions& options() const { return options_; }

 private:
  ReporterRunner() = default;
  ReporterRunnerOptions options_;
  std::string dir_;
  int status_port_ = 0;
  std::optional<hsync::testing::ChildProcess> process_;
  std::shared_ptr<grpc::Channel> status_channel_;
};

}  // namespace hsync::e2e
