#include "tests/hub_ops/ops_hub.h"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "hub/service/node_auth.h"

namespace hsync::hub::testing {

using hsync::testing::ChildProcess;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status MakeCerts(const std::string& out_dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash", absl::StrCat(HSYNC_SOURCE_DIR, "/deploy/make-certs.sh"),
                                   out_dir};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string log = absl::StrCat(out_dir, ".log");
  absl::StatusOr<ChildProcess> process = ChildProcess::Spawn(argv, log);
  if (!process.ok()) return process.status();
  absl::StatusOr<int> code = process->Wait(absl::Seconds(60));
  if (!code.ok()) return code.status();
  if (*code != 0) return absl::InternalError(absl::StrCat("make-certs.sh failed: ", ReadWholeFile(log)));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OpsHub>> OpsHub::Start(OpsHubSetup setup) {
  std::unique_ptr<OpsHub> hub(new OpsHub());
  hub->dir_ = hsync::testing::MakeTempDir("ops_hub");
  hub->config_path_ = absl::StrCat(hub->dir_, "/hub.toml");
  hub->port_ = hsync::testing::PickFreePort();
  const std::string key_file = absl::StrCat(hub->dir_, "/parent_api_key");
  std::ofstream(key_file) << setup.parent_api_key << "\n";
  ::chmod(key_file.c_str(), 0600);
  std::string text = absl::StrCat("listen = \"", setup.listen_host, ":", hub->port_, "\"\n",
                                  "plaintext = ", setup.plaintext ? "true" : "false", "\n",
                                  "operator_socket = \"", hub->operator_socket(), "\"\n");
  if (!setup.plaintext) {
    absl::StrAppend(&text, "[tls]\ncert_file = \"", setup.cert_file, "\"\nkey_file = \"",
                    setup.key_file, "\"\nclient_ca_file = \"", setup.client_ca_file,
                    "\"\nrequire_client_cert = ", setup.require_client_cert ? "true" : "false", "\n");
  }
  absl::StrAppend(&text, "[parent]\nurl = \"", setup.parent_url, "\"\napi_key_file = \"", key_file,
                  "\"\ntimeout = \"2s\"\nconnect_timeout = \"1s\"\n[journal]\npath = \"", hub->dir_,
                  "/journal.db\"\n[apply]\ninterval = \"100ms\"\nmax_apply_delay = \"0s\"\n",
                  setup.extra_toml, "\n[metrics]\nlisten = \"", setup.metrics_listen, "\"\n[nodes]\n");
  for (const auto& [node, token] : setup.node_tokens) {
    absl::StrAppend(&text, node, " = \"", TokenHash(token), "\"\n");
  }
  std::ofstream(hub->config_path_) << text;
  const std::string log = absl::StrCat(hub->dir_, "/hub.log");
  absl::StatusOr<ChildProcess> process = ChildProcess::Spawn(
      {hsync::testing::BuiltBinary("hiddify-sync-hub"), "--config", hub->config_path_}, log);
  if (!process.ok()) return process.status();
  hub->process_.emplace(*std::move(process));
  const bool up = hsync::testing::WaitFor(
      [&] { return !hub->process_->Running() || hub->ReadLog().find("serving on") != std::string::npos; },
      absl::Seconds(30));
  if (!up || !hub->process_->Running()) {
    return absl::InternalError(absl::StrCat("hub did not start; log:\n", hub->ReadLog()));
  }
  return hub;
}

OpsHub::~OpsHub() {
  if (process_.has_value() && process_->Running()) (void)process_->Signal(SIGKILL, absl::Seconds(10));
}

std::string OpsHub::ReadLog() const { return ReadWholeFile(absl::StrCat(dir_, "/hub.log")); }

bool OpsHub::Signal(int signal) { return process_.has_value() && ::kill(process_->pid(), signal) == 0; }

}  // namespace hsync::hub::testing
