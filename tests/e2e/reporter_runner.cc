#include "tests/e2e/reporter_runner.h"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/e2e/hub_runner.h"

namespace hsync::e2e {

using hsync::testing::ChildProcess;

absl::StatusOr<std::unique_ptr<ReporterRunner>> ReporterRunner::Create(
    ReporterRunnerOptions options) {
  std::unique_ptr<ReporterRunner> r(new ReporterRunner());
  r->options_ = std::move(options);
  r->dir_ = hsync::testing::MakeTempDir("e2e-reporter");
  r->status_port_ = hsync::testing::PickFreePort();
  r->status_channel_ = MakeE2eChannel(absl::StrCat("127.0.0.1:", r->status_port_));
  const ReporterRunnerOptions& o = r->options_;
  const std::string token_file = absl::StrCat(r->dir_, "/token");
  std::ofstream(token_file) << o.token << "\n";
  ::chmod(token_file.c_str(), 0600);
  std::string text = absl::StrCat(
      "node_id = \"", o.node_id, "\"\nlog_level = \"", o.log_level, "\"\n",
      "[hub]\naddress = \"", o.hub_address, "\"\nplaintext = true\ntoken_file = \"", token_file,
      "\"\n",
      "[mysql]\nsocket = \"", o.mysql_socket, "\"\ndatabase = \"", o.panel_database,
      "\"\nstate_database = \"", o.state_database, "\"\n",
      // The child starts empty: nothing was counted before, so no baseline.
      "[collect]\ninterval = \"", o.collect_interval, "\"\nmin_report_bytes = ",
      o.min_report_bytes, "\nbaseline_existing_usage = false\n",
      "[apply]\ncommand = \"", o.apply_command, "\"\ndebounce = \"200ms\"\n",
      "[panel]\n",
      o.panel_address.empty()
          ? std::string("core_sync = false\n")
          : absl::StrCat("address = \"", o.panel_address,
                         "\"\nretry_initial = \"100ms\"\nretry_max = \"1s\"\n"),
      "[status]\nlisten = \"127.0.0.1:", r->status_port_, "\"\n",
      "[metrics]\nlisten = \"", o.metrics_listen, "\"\n");
  const std::string path = absl::StrCat(r->dir_, "/reporter.toml");
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return r;
}

ReporterRunner::~ReporterRunner() { Kill(); }

absl::Status ReporterRunner::Start() {
  if (Running()) return absl::FailedPreconditionError("reporter already running");
  absl::StatusOr<ChildProcess> process = ChildProcess::Spawn(
      {hsync::testing::BuiltBinary("hiddify-sync-reporter"), "--config",
       absl::StrCat(dir_, "/reporter.toml")},
      absl::StrCat(dir_, "/reporter.log"));
  if (!process.ok()) return process.status();
  process_.emplace(*std::move(process));
  return absl::OkStatus();
}

void ReporterRunner::Kill() {
  if (process_.has_value() && process_->Running()) (void)process_->Signal(SIGKILL);
  process_.reset();
}

bool ReporterRunner::Running() { return process_.has_value() && process_->Running(); }

int ReporterRunner::pid() { return Running() ? process_->pid() : -1; }

absl::StatusOr<hiddify_sync::v1::ReporterStatusReply> ReporterRunner::Status(
    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  hiddify_sync::v1::ReporterStatusReply reply;
  auto stub = hiddify_sync::v1::ReporterStatus::NewStub(status_channel_);
  const grpc::Status rpc =
      stub->GetStatus(&context, hiddify_sync::v1::GetReporterStatusRequest(), &reply);
  if (!rpc.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(rpc.error_code()),
                        absl::StrCat("reporter ", options_.node_id,
                                     " status: ", rpc.error_message()));
  }
  return reply;
}

std::string ReporterRunner::LogTail(size_t bytes) const {
  std::ifstream in(absl::StrCat(dir_, "/reporter.log"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() <= bytes ? all : all.substr(all.size() - bytes);
}

}  // namespace hsync::e2e
