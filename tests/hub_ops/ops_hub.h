// A hiddify-sync-hub process with a config the hub harness does not write:
// TLS (certificates from deploy/make-certs.sh), any listen address, client
// certificates. Started from a temp dir, with its operator socket at
// <dir>/hub.sock; ready once it logs its "serving on" line. Killed (SIGKILL)
// on destruction.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "tests/support/child_process.h"

namespace hsync::hub::testing {

struct OpsHubSetup {
  std::string listen_host = "127.0.0.1";
  bool plaintext = false;
  std::string cert_file, key_file, client_ca_file;
  bool require_client_cert = false;
  std::string parent_url = "http://127.0.0.1:1/SeCrEt-AdMiN-PaTh";
  std::string parent_api_key = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
  std::map<std::string, std::string> node_tokens;  // node id -> token (the hub gets hashes)
  std::string extra_toml;                           // appended verbatim
  std::string metrics_listen;                       // [metrics] listen; "" = off
};

class OpsHub {
 public:
  static absl::StatusOr<std::unique_ptr<OpsHub>> Start(OpsHubSetup setup);
  ~OpsHub();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string operator_socket() const { return dir_ + "/hub.sock"; }
  std::string ReadLog() const;
  bool Signal(int signal);

 private:
  OpsHub() = default;
  std::string dir_, config_path_;
  int port_ = 0;
  std::optional<hsync::testing::ChildProcess> process_;
};

// Runs deploy/make-certs.sh OUTDIR ARGS...; OK when it exits 0.
absl::Status MakeCerts(const std::string& out_dir, const std::vector<std::string>& args = {});

std::string ReadWholeFile(const std::string& path);

}  // namespace hsync::hub::testing
