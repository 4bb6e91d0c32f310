#include "tests/reporter/reporter_process.h"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ReporterProcess::ReporterProcess(ReporterSetup setup) : setup_(std::move(setup)) {
  dir_ = MakeTempDir("reporter");
  config_path_ = dir_ + "/reporter.toml";
  log_path_ = dir_ + "/reporter.log";
  status_port_ = PickFreePort();
  const std::string token_path = dir_ + "/token";
  std::ofstream(token_path) << setup_.token << "\n";
  chmod(token_path.c_str(), 0600);
  if (setup_.mysql_socket.empty()) setup_.mysql_socket = SharedMariaDb().socket_path();
  std::ofstream config(config_path_);
  config << "node_id = \"" << setup_.node_id << "\"\n"
         << "log_level = \"debug\"\n"
         << "[hub]\naddress = \"" << setup_.hub_address << "\"\nplaintext = true\n"
         << "token_file = \"" << token_path << "\"\n"
         << "[mysql]\nsocket = \"" << setup_.mysql_socket << "\"\ndatabase = \"" << setup_.panel_db
         << "\"\nstate_database = \"" << setup_.state_db << "\"\n"
         << "[collect]\ninterval = \"" << setup_.collect_interval << "\"\n"
         << setup_.collect_extra
         << "[apply]\ncommand = \"" << setup_.apply_command << "\"\ndebounce = \"200ms\"\n"
         << setup_.apply_extra << "[panel]\n"
         << (setup_.panel_address.empty()
                 ? std::string("core_sync = false\n")
                 : absl::StrCat("address = \"", setup_.panel_address,
                                "\"\nretry_initial = \"100ms\"\nretry_max = \"1s\"\n"))
         << setup_.panel_extra
         << "[status]\nlisten = \"127.0.0.1:" << status_port_ << "\"\n"
         << "[metrics]\nlisten = \"" << setup_.metrics_listen << "\"\n"
         << setup_.extra << "\n";
}

ReporterProcess::~ReporterProcess() {
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::Status ReporterProcess::Start() {
  auto process = ChildProcess::Spawn(
      {BuiltBinary("hiddify-sync-reporter"), "--config", config_path_}, log_path_);
  if (!process.ok()) return process.status();
  process_ = std::make_unique<ChildProcess>(*std::move(process));
  return absl::OkStatus();
}

void ReporterProcess::Kill() {
  if (process_ != nullptr && process_->Running()) (void)process_->Signal(SIGKILL);
  process_.reset();
}

absl::StatusOr<int> ReporterProcess::Terminate() {
  if (process_ == nullptr) return absl::FailedPreconditionError("not running");
  auto code = process_->Signal(SIGTERM, absl::Seconds(20));
  process_.reset();
  return code;
}

std::pair<int, std::string> ReporterProcess::StatusCommand() {
  const std::string out = dir_ + "/status.out";
  std::remove(out.c_str());
  auto process = ChildProcess::Spawn(
      {BuiltBinary("hiddify-sync-reporter"), "status", "--config", config_path_}, out);
  if (!process.ok()) return {-1, std::string(process.status().message())};
  auto code = process->Wait(absl::Seconds(20));
  return {code.ok() ? *code : -1, ReadFileOrEmpty(out)};
}

std::string ReporterProcess::Log() const { return ReadFileOrEmpty(log_path_); }

void ReporterProcess::SetToken(const std::string& token) {
  const std::string token_path = dir_ + "/token";
  std::ofstream(token_path, std::ios::trunc) << token << "\n";
}

}  // namespace hsync::testing
