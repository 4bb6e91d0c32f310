#include "tests/support/panelsim_runner.h"

#include <signal.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
namespace {

std::string RandomUuid4() {
  static absl::BitGen gen;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & ~uint64_t{0xF000}) | uint64_t{0x4000};               // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);    // variant 10xx
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                         lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& text, size_t n) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PanelsimRunner>> PanelsimRunner::Start(PanelsimOptions options) {
  if (options.database.empty()) options.database = UniqueDatabaseName("panelsim");
  if (options.owner_uuid.empty()) options.owner_uuid = RandomUuid4();
  RETURN_IF_ERROR(SharedMariaDb().CreateHiddifyDatabase(options.database, options.owner_uuid));
  std::unique_ptr<PanelsimRunner> runner(new PanelsimRunner());
  runner->options_ = std::move(options);
  RETURN_IF_ERROR(runner->Launch());
  return runner;
}

std::string PanelsimRunner::root_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::string PanelsimRunner::apply_command() const {
  return absl::StrCat(BuiltBinary("panelsim-ctl"), " --port ", port_, " apply_users --no-gui");
}

std::string PanelsimRunner::base_url() const {
  return absl::StrCat(root_url(), "/", options_.proxy_path);
}

absl::Status PanelsimRunner::Launch() {
  const std::string dir = MakeTempDir("panelsim");
  const std::string log_path = absl::StrCat(dir, "/panelsim-", options_.database, ".log");
  const std::string port_file = absl::StrCat(dir, "/port");
  std::vector<std::string> argv = {BuiltBinary("panelsim"),
                                   "--mysql-socket", SharedMariaDb().socket_path(),
                                   "--database", options_.database,
                                   "--owner-uuid", options_.owner_uuid,
                                   "--proxy-path", options_.proxy_path,
                                   "--control",
                                   "--port", std::to_string(port_),
                                   "--port-file", port_file,
                                   // Short for tests (extra_args may override):
                                   // traffic reaches the table within 0.2 s,
                                   // an apply run takes 50 ms.
                                   "--usage-task-interval-ms", "200",
                                   "--apply-duration-ms", "50"};
  if (options_.demo_users > 0) {
    argv.push_back("--demo-users");
    argv.push_back(std::to_string(options_.demo_users));
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());

  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv, log_path));
  process_ = std::make_unique<ChildProcess>(std::move(child));

  int port = 0;
  bool exited = false;
  const bool ready = WaitFor(
      [&] {
        std::string text(absl::StripAsciiWhitespace(ReadWholeFile(port_file)));
        if (!text.empty() && absl::SimpleAtoi(text, &port) && port > 0) return true;
        if (!process_->Running()) {
          exited = true;
          return true;
        }
        return false;
      },
      absl::Seconds(30));
  if (!ready || exited || port <= 0) {
    const std::string log_tail = Tail(ReadWholeFile(log_path), 2000);
    process_.reset();
    return absl::UnavailableError(absl::StrCat(
        "panelsim did not come up (", exited ? "it exited" : "no port file after 30 s",
        "); log ", log_path, ":\n", log_tail));
  }
  port_ = port;
  return absl::OkStatus();
}

absl::Status PanelsimRunner::Restart() {
  if (process_ != nullptr) {
    if (process_->Running()) {
      auto status = process_->Signal(SIGTERM, absl::Seconds(5));
      if (!status.ok()) (void)process_->Signal(SIGKILL, absl::Seconds(5));
    }
    process_.reset();
  }
  return Launch();
}

absl::StatusOr<HttpResponse> PanelsimRunner::Api(const std::string& method,
                                                 const std::string& path_under_v2,
                                                 const std::string& body) {
  TestHttpClient client(root_url());
  const std::string path = absl::StrCat("/", options_.proxy_path, "/api/v2/",
                                        absl::StripPrefix(path_under_v2, "/"));
  return client.Request(method, path, body,
                        {absl::StrCat("Hiddify-API-Key: ", options_.owner_uuid),
                         "Accept: application/json", "Content-Type: application/json",
                         "User-Agent: hiddify-sync-test/1"});
}

absl::StatusOr<HttpResponse> PanelsimRunner::Control(const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body) {
  TestHttpClient client(root_url());
  std::string full;
  if (absl::StartsWith(path, "/_sim/")) {
    full = path;
  } else if (absl::StartsWith(path, "_sim/")) {
    full = absl::StrCat("/", path);
  } else {
    full = absl::StrCat("/_sim/", absl::StripPrefix(path, "/"));
  }
  return client.Request(method, full, body, {"Content-Type: application/json"},
                        absl::Seconds(30));
}

}  // namespace hsync::testing
