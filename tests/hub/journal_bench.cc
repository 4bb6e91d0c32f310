// hub_journal_bench: ingest throughput of Journal::Accept with durable
// (group-committed, fsynced) acks. N concurrent callers each send a stream of
// reports of U users; prints user-deltas/s and p50/p99/max Accept latency.
//
//   hub_journal_bench [--callers 50] [--users-per-report 1000] [--reports 40]
//                     [--user-pool 100000] [--dir DIR]
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "hub/journal/journal.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/support/child_process.h"

namespace {

struct Options {
  int callers = 50;
  int users_per_report = 1000;
  int reports = 40;  // per caller
  int user_pool = 100'000;
  std::string dir;
};

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const char* value = argv[i + 1];
    if (key == "--dir") {
      o->dir = value;
      continue;
    }
    int* target = key == "--callers"            ? &o->callers
                  : key == "--users-per-report" ? &o->users_per_report
                  : key == "--reports"          ? &o->reports
                  : key == "--user-pool"        ? &o->user_pool
                                                : nullptr;
    if (target == nullptr || !absl::SimpleAtoi(value, target) || *target <= 0) {
      std::fprintf(stderr, "bad argument %s %s\n", key.c_str(), value);
      return false;
    }
  }
  return argc % 2 == 1;
}

// CPU seconds (user + system) used so far by this process's threads named
// `name` (empty = all threads), from /proc.
double ThreadCpuSeconds(const std::string& name) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double total = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const std::string base = std::string("/proc/self/task/") + entry->d_name;
    std::ifstream comm_file(base + "/comm");
    std::string comm;
    std::getline(comm_file, comm);
    if (!name.empty() && comm != name) continue;
    std::ifstream stat_file(base + "/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(close_paren + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; fields >> field; ++i) {  // field 3 is the state
      if (i == 14) utime = std::stod(field);
      if (i == 15) {
        stime = std::stod(field);
        break;
      }
    }
    total += (utime + stime) / ticks;
  }
  closedir(dir);
  return total;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  using hsync::hub::testing::MakeReport;
  using hsync::hub::testing::TestUuid;
  Options opt;
  if (!ParseArgs(argc, argv, &opt)) return 2;
  if (opt.dir.empty()) opt.dir = hsync::testing::MakeTempDir("journal-bench");
  const std::string path = opt.dir + "/journal.sqlite";
  auto journal = hsync::hub::Journal::Open(path);
  if (!journal.ok()) {
    std::fprintf(stderr, "open: %s\n", journal.status().ToString().c_str());
    return 1;
  }

  // Reports are built before the clock starts: building protos is the gRPC
  // layer's work, not the journal's.
  std::vector<std::vector<hiddify_sync::v1::UsageReport>> reports(opt.callers);
  absl::BitGen gen;
  const absl::Time now = absl::Now();
  for (int c = 0; c < opt.callers; ++c) {
    for (int r = 0; r < opt.reports; ++r) {
      std::vector<hsync::hub::testing::Delta> deltas;
      const int start = absl::Uniform(gen, 0, opt.user_pool);
      for (int u = 0; u < opt.users_per_report; ++u) {
        deltas.push_back({TestUuid((start + u * 7) % opt.user_pool),
                          absl::Uniform<uint64_t>(gen, 1, 50'000'000), now});
      }
      reports[c].push_back(
          MakeReport("node-" + std::to_string(c), 1000 + c, static_cast<uint64_t>(r + 1), deltas));
    }
  }

  std::vector<std::vector<double>> latencies_ms(opt.callers);
  std::atomic<bool> failed{false};
  const double writer_cpu_before = ThreadCpuSeconds("journal-writer");
  const double cpu_before = ThreadCpuSeconds("");
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int c = 0; c < opt.callers; ++c) {
    threads.emplace_back([&, c] {
      for (const auto& report : reports[c]) {
        const absl::Time t0 = absl::Now();
        auto result = (*journal)->Accept(report);
        latencies_ms[c].push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
        if (!result.ok() || result->duplicate) {
          std::fprintf(stderr, "accept failed: %s\n",
                       result.ok() ? "duplicate" : result.status().ToString().c_str());
          failed = true;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double writer_cpu = ThreadCpuSeconds("journal-writer") - writer_cpu_before;
  const double cpu = ThreadCpuSeconds("") - cpu_before;
  if (failed) return 1;

  std::vector<double> all;
  for (const auto& v : latencies_ms) all.insert(all.end(), v.begin(), v.end());
  const double deltas = static_cast<double>(opt.callers) * opt.reports * opt.users_per_report;
  std::printf("journal ingest: %d callers x %d reports x %d users (pool %d), durable acks\n",
              opt.callers, opt.reports, opt.users_per_report, opt.user_pool);
  std::printf("  %.0f user-deltas in %.2f s = %.0f user-deltas/s (%.0f reports/s)\n", deltas,
              seconds, deltas / seconds, static_cast<double>(all.size()) / seconds);
  std::printf("  Accept latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", Percentile(all, 0.5),
              Percentile(all, 0.99), Percentile(all, 1.0));
  // Load-independent figures: what the single writer thread and the whole
  // process spend per million deltas (the writer bounds the ingest rate).
  std::printf("  CPU per 1M user-deltas: writer thread %.2f s, whole process %.2f s "
              "(writer-bound ceiling %.0f user-deltas/s)\n",
              writer_cpu * 1e6 / deltas, cpu * 1e6 / deltas,
              writer_cpu > 0 ? deltas / writer_cpu : 0.0);
  auto stats = (*journal)->Stats();
  if (stats.ok()) {
    std::printf("  journal: %llu pending users, %llu reports kept\n",
                static_cast<unsigned long long>(stats->pending_users),
                static_cast<unsigned long long>(stats->reports));
  }
  return 0;
}
