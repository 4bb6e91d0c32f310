// Runs a panelsim binary for a test, over a database of the shared test MariaDB.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"

namespace hsync::testing {

struct PanelsimOptions {
  std::string database;                 // created fresh with the Hiddify schema
  std::string owner_uuid;               // the super admin's uuid = API key; random if empty
  std::string proxy_path = "proxy";
  int demo_users = 0;
  std::vector<std::string> extra_args;  // e.g. {"--traffic-interval-ms", "100"}
};

class PanelsimRunner {
 public:
  // Creates the database in SharedMariaDb(), starts panelsim with --control
  // (usage task every 200 ms, apply runs of 50 ms unless extra_args say
  // otherwise) and waits for its port. Its log goes to <tmp>/panelsim-<database>.log.
  static absl::StatusOr<std::unique_ptr<PanelsimRunner>> Start(PanelsimOptions options);

  int port() const { return port_; }
  const std::string& api_key() const { return options_.owner_uuid; }
  // "http://127.0.0.1:PORT/<proxy_path>" — what the hub's parent.url is set to.
  std::string base_url() const;
  // "http://127.0.0.1:PORT".
  std::string root_url() const;
  const PanelsimOptions& options() const { return options_; }
  ChildProcess& process() { return *process_; }

  // Calls the admin API with the owner's key (Accept: application/json).
  absl::StatusOr<HttpResponse> Api(const std::string& method, const std::string& path_under_v2,
                                   const std::string& body = "");
  // Calls the control API (/_sim/...).
  // The reporter's [apply] command for this panelsim: panelsim-ctl apply_users --no-gui.
  std::string apply_command() const;
  absl::StatusOr<HttpResponse> Control(const std::string& method, const std::string& path,
                                       const std::string& body = "");
  // Restarts the process on the same database and port (for fault tests).
  absl::Status Restart();

 private:
  PanelsimRunner() = default;
  absl::Status Launch();
  PanelsimOptions options_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace hsync::testing
