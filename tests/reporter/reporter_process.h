// Runs the hiddify-sync-reporter binary for a test: writes its config and
// token into a temp dir, starts it as a child process, runs its `status`
// subcommand, and reads its log.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/support/child_process.h"

namespace hsync::testing {

struct ReporterSetup {
  std::string node_id = "child-1";
  std::string hub_address;       // host:port, plaintext
  std::string token = "node-token";
  std::string mysql_socket;      // default: the shared test MariaDB
  std::string panel_db;
  std::string state_db;
  std::string collect_interval = "5s";
  std::string collect_extra;     // more [collect] lines, e.g. "min_report_bytes = 1\n"
  std::string apply_command;     // [apply] command; empty: apply disabled
  std::string apply_extra;       // more [apply] lines, e.g. "busy_retry = \"100ms\"\n"
  std::string panel_address;     // [panel] address; empty: core_sync = false
  std::string panel_extra;       // more [panel] lines
  std::string extra;             // more TOML, appended at the end (use [section] headers)
  std::string metrics_listen;    // [metrics] listen; "" = off (the default port may be taken)
};

class ReporterProcess {
 public:
  explicit ReporterProcess(ReporterSetup setup);
  ~ReporterProcess();

  const std::string& config_path() const { return config_path_; }
  const std::string& log_path() const { return log_path_; }
  int status_port() const { return status_port_; }
  std::string status_address() const { return "127.0.0.1:" + std::to_string(status_port_); }

  absl::Status Start();
  ChildProcess* process() { return process_.get(); }
  // SIGKILL and reap.
  void Kill();
  // SIGTERM; returns the exit code.
  absl::StatusOr<int> Terminate();
  // Rewrites the token file (takes effect at the next Start()).
  void SetToken(const std::string& token);
  // Runs `hiddify-sync-reporter status --config ...`; returns {exit code, output}.
  std::pair<int, std::string> StatusCommand();
  std::string Log() const;

 private:
  ReporterSetup setup_;
  std::string dir_;
  std::string config_path_;
  std::string log_path_;
  int status_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// Reads a whole file ("" if missing).
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace hsync::testing
