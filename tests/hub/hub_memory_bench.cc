// hub_memory_bench: the real hub binary's memory with a big roster and many
// open WatchRoster streams. panelsim (over MariaDB) holds N demo users; the
// hub reads them once; then S streams are opened (in batches, so that this
// client does not hold S full rosters at once) and each receives the full
// roster; then one user change is broadcast to all of them. Prints the hub's
// VmRSS at each step and its peak (VmHWM). Target (issue 3): < 150 MB with
// 100,000 users and 200 streams.
//
// The clients read raw bytes (generic stub) and never parse the roster.
//
// Since issue 13 it also samples the hub's RSS during a full parent read
// while every stream is open (the list is parsed as it arrives).
//
//   hub_memory_bench [--users 100000] [--streams 200] [--batch 10] [--maps]
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/hub/hub_harness.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
void StopSharedMariaDb();
}  // namespace hsync::testing

namespace {

using hsync::hub::testing::HubProcess;
using hsync::hub::testing::HubSetup;

// A WatchRoster stream that only counts what it receives.
class RawStream : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawStream(grpc::GenericStub* stub, const std::string& node, const std::string& token) {
    hsync::hub::testing::AddBearer(&context_, token);
    hiddify_sync::v1::WatchRosterRequest request;
    request.set_node_id(node);
    const std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes);
    request_ = grpc::ByteBuffer(&slice, 1);
    stub->PrepareBidiStreamingCall(&context_, "/hiddify_sync.v1.SyncHub/WatchRoster",
                                   grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&message_);
    StartCall();
  }
  ~RawStream() override {
    context_.TryCancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      absl::MutexLock lock(&mu_);
      ++messages_;
      bytes_ += message_.Length();
    }
    message_.Clear();
    StartRead(&message_);
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }

  bool WaitForMessages(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return messages_ >= n || done_; };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout) && messages_ >= n;
  }
  size_t bytes() {
    absl::MutexLock lock(&mu_);
    return bytes_;
  }

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer message_;
  absl::Mutex mu_;
  int messages_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

// "VmRSS" / "VmHWM" of a process, in MB.
double ProcMb(int pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      double kb = 0;
      absl::SimpleAtod(absl::StripAsciiWhitespace(absl::StripSuffix(line.substr(field.size() + 1), "kB")),
                       &kb);
      return kb / 1024.0;
    }
  }
  return 0;
}

// The biggest mappings of the process by resident size (--maps).
void PrintTopMappings(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps"));
  std::string line;
  std::string current;
  std::vector<std::pair<double, std::string>> sizes;
  while (std::getline(in, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') != std::string::npos && line.find(':') > line.find(' ')) {
      current = line;
    } else if (line.rfind("Rss:", 0) == 0) {
      double kb = 0;
      absl::SimpleAtod(absl::StripAsciiWhitespace(absl::StripSuffix(line.substr(4), "kB")), &kb);
      sizes.emplace_back(kb / 1024.0, current);
    }
  }
  std::sort(sizes.rbegin(), sizes.rend());
  for (size_t i = 0; i < std::min<size_t>(8, sizes.size()); ++i) {
    std::printf("    %7.1f MB  %s\n", sizes[i].first, sizes[i].second.c_str());
  }
}

bool g_print_maps = false;

void PrintMemory(const char* step, int pid) {
  std::printf("%-46s VmRSS %7.1f MB   VmHWM %7.1f MB   threads %.0f\n", step, ProcMb(pid, "VmRSS"),
              ProcMb(pid, "VmHWM"), ProcMb(pid, "Threads") * 1024.0);
  if (g_print_maps) PrintTopMappings(pid);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int users = 100'000;
  int streams = 200;
  int batch = 10;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--maps") {
      g_print_maps = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) return 2;
    int n = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &n) || n <= 0) return 2;
    if (flag == "--users") users = n;
    else if (flag == "--streams") streams = n;
    else if (flag == "--batch") batch = n;
    else return 2;
  }
  std::printf("hub_memory_bench: %d users in the roster, %d WatchRoster streams\n", users, streams);
  // panelsim with N demo users (generated with keys, like a real panel's);
  // started here because generating 100,000 users takes longer than
  // PanelsimRunner waits.
  absl::Time t = absl::Now();
  const std::string database = hsync::testing::UniqueDatabaseName("memory");
  const std::string owner = "3f0c2a1e-9b8d-4c7e-a6f5-1234567890ab";
  if (absl::Status created = hsync::testing::SharedMariaDb().CreateHiddifyDatabase(database, owner);
      !created.ok()) {
    std::fprintf(stderr, "database: %s\n", created.ToString().c_str());
    return 1;
  }
  const std::string dir = hsync::testing::MakeTempDir("memory_bench");
  const std::string port_file = absl::StrCat(dir, "/port");
  auto panelsim = hsync::testing::ChildProcess::Spawn(
      {hsync::testing::BuiltBinary("panelsim"), "--mysql-socket",
       hsync::testing::SharedMariaDb().socket_path(), "--database", database, "--owner-uuid", owner,
       "--control", "--port", "0", "--port-file", port_file, "--demo-users", std::to_string(users)},
      absl::StrCat(dir, "/panelsim.log"));
  if (!panelsim.ok()) {
    std::fprintf(stderr, "panelsim: %s\n", panelsim.status().ToString().c_str());
    return 1;
  }
  int panel_port = 0;
  hsync::testing::WaitFor(
      [&] {
        std::ifstream in(port_file);
        return static_cast<bool>(in >> panel_port) && panel_port > 0;
      },
      absl::Seconds(900));
  if (panel_port <= 0) {
    std::fprintf(stderr, "panelsim did not start; see %s/panelsim.log\n", dir.c_str());
    return 1;
  }
  const std::string panel_root = absl::StrCat("http://127.0.0.1:", panel_port);
  std::printf("setup: panelsim with %d demo users in %.1f s\n", users,
              absl::ToDoubleSeconds(absl::Now() - t));

  HubSetup setup;
  setup.parent_url = absl::StrCat(panel_root, "/proxy");
  setup.parent_api_key = owner;
  setup.node_tokens = hsync::hub::testing::MakeNodeTokens(1);
  setup.poll_interval = "20s";
  setup.parent_timeout = "300s";
  auto hub = HubProcess::Start(setup);
  if (!hub.ok()) {
    std::fprintf(stderr, "hub: %s\n", hub.status().ToString().c_str());
    return 1;
  }
  const int pid = (*hub)->pid();
  PrintMemory("hub started, roster read in progress", pid);
  t = absl::Now();
  if (!hsync::testing::WaitFor(
          [&] {
            auto status = (*hub)->Status();
            return status.ok() && status->roster_size() >= static_cast<uint64_t>(users);
          },
          absl::Seconds(600))) {
    std::fprintf(stderr, "roster not loaded\n%s\n", (*hub)->ReadLog().c_str());
    return 1;
  }
  std::printf("roster of %d users loaded by the hub in %.1f s\n", users,
              absl::ToDoubleSeconds(absl::Now() - t));
  absl::SleepFor(absl::Seconds(1));
  PrintMemory("roster loaded, no stream", pid);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int c = 0; c < 10; ++c) {
    args.SetInt("hsync.bench.channel", c);
    channels.push_back(grpc::CreateCustomChannel((*hub)->target(), grpc::InsecureChannelCredentials(), args));
    stubs.push_back(std::make_unique<grpc::GenericStub>(channels.back()));
  }
  std::vector<std::unique_ptr<RawStream>> open;
  t = absl::Now();
  const std::string token = setup.node_tokens.at("node-0");
  for (int i = 0; i < streams; i += batch) {
    const int first = static_cast<int>(open.size());
    for (int j = i; j < std::min(streams, i + batch); ++j) {
      open.push_back(std::make_unique<RawStream>(stubs[j % stubs.size()].get(), "node-0", token));
    }
    for (size_t j = first; j < open.size(); ++j) {
      if (!open[j]->WaitForMessages(1, absl::Seconds(300))) {
        std::fprintf(stderr, "stream %zu got no full roster\n", j);
        return 1;
      }
    }
  }
  std::printf("%d streams opened, each got the full roster (%.1f MB) in %.1f s\n", streams,
              open[0]->bytes() / 1048576.0, absl::ToDoubleSeconds(absl::Now() - t));
  // Steady state: past the hub's 30 s housekeeping tick (which returns freed
  // memory to the system).
  absl::SleepFor(absl::Seconds(35));
  PrintMemory("roster loaded, all streams open (steady)", pid);

  // A full read of the parent's list while every stream is open (the poller
  // reads every 20 s here): the hub's RSS sampled every 100 ms until the
  // next successful read has finished.
  {
    auto before = (*hub)->Status();
    const int64_t fetched = before.ok() ? before->roster_fetched_at().seconds() : 0;
    double max_rss = 0;
    const absl::Time read_t = absl::Now();
    hsync::testing::WaitFor(
        [&] {
          max_rss = std::max(max_rss, ProcMb(pid, "VmRSS"));
          auto status = (*hub)->Status();
          return status.ok() && status->roster_fetched_at().seconds() > fetched &&
                 status->has_roster_fetched_at();
        },
        absl::Seconds(300));
    // The read that started last is done once fetched_at moved; sample a bit
    // longer for its commit.
    for (int i = 0; i < 20; ++i) {
      max_rss = std::max(max_rss, ProcMb(pid, "VmRSS"));
      absl::SleepFor(absl::Milliseconds(100));
    }
    std::printf("full parent read with all streams open: max VmRSS %.1f MB (waited %.1f s)\n",
                max_rss, absl::ToDoubleSeconds(absl::Now() - read_t));
  }

  // One change for everyone: a user PATCHed through the hub's applier.
  hsync::hub::testing::SimulatedChild child("node-0", token, (*hub)->channel());
  hsync::testing::TestHttpClient http(panel_root);
  auto list = http.Request("GET", "/proxy/api/v2/admin/user/", "",
                           {absl::StrCat("Hiddify-API-Key: ", owner), "Accept: application/json",
                            "User-Agent: hub-memory-bench/1"},
                           absl::Seconds(300));
  const size_t at = list.ok() ? list->body.find("\"uuid\":\"") : std::string::npos;
  if (at == std::string::npos) {
    std::fprintf(stderr, "cannot read a uuid from the panel\n");
    return 1;
  }
  const std::string uuid = list->body.substr(at + 8, 36);
  list = absl::InternalError("dropped");  // free the 100k-user list
  if (!child.Report({{uuid, 12345}}).ok()) {
    std::fprintf(stderr, "report failed\n");
    return 1;
  }
  for (auto& stream : open) {
    if (!stream->WaitForMessages(2, absl::Seconds(120))) {
      std::fprintf(stderr, "a stream missed the change\n");
      return 1;
    }
  }
  absl::SleepFor(absl::Seconds(1));
  PrintMemory("after one change broadcast to every stream", pid);
  auto status = (*hub)->Status();
  if (status.ok()) {
    std::printf("hub status: roster_size %llu, roster_watchers %u, roster_version %llu\n",
                static_cast<unsigned long long>(status->roster_size()), status->roster_watchers(),
                static_cast<unsigned long long>(status->roster_version()));
  }
  std::printf("target: VmRSS < 150 MB with %d users and %d streams\n", users, streams);
  open.clear();
  hub->reset();
  panelsim->Signal(SIGTERM).IgnoreError();
  hsync::testing::StopSharedMariaDb();
  return 0;
}
