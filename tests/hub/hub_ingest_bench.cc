// hub_ingest_bench: how fast the real hub binary takes usage reports.
// N concurrent streams (one simulated child each, own node token) send
// reports of K users back to back over gRPC; each waits for its ack, which
// the hub gives only after the report is durably journaled (SQLite WAL,
// synchronous=FULL, group commit). The parent is unreachable, so the applier
// only backs off: this measures ingest alone.
// Prints user-deltas/s and ack latency percentiles. Target (issue 3):
// >= 100,000 user-deltas/s with 50 streams of 1,000-user reports.
//
//   hub_ingest_bench [--streams 50] [--users 1000] [--seconds 20] [--warmup 3]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/hub/hub_harness.h"

namespace {

using hiddify_sync::v1::ReportAck;
using hiddify_sync::v1::UsageReport;
using hsync::hub::testing::HubProcess;
using hsync::hub::testing::HubSetup;
using hsync::hub::testing::SimulatedChild;

struct Options {
  int streams = 50;
  int users = 1000;
  int seconds = 20;
  int warmup = 3;
};

bool Parse(int argc, char** argv, Options* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    int n = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &n) || n < 0) return false;
    if (flag == "--streams") o->streams = n;
    else if (flag == "--users") o->users = n;
    else if (flag == "--seconds") o->seconds = n;
    else if (flag == "--warmup") o->warmup = n;
    else return false;
  }
  return argc % 2 == 1 && o->streams > 0 && o->users > 0 && o->seconds > 0;
}

// utime + stime of a process, in seconds.
double CpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields = absl::StrSplit(line.substr(line.rfind(')') + 2), ' ');
  double utime = 0, stime = 0;
  if (fields.size() > 12) {
    absl::SimpleAtod(fields[11], &utime);
    absl::SimpleAtod(fields[12], &stime);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  return values[index];
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!Parse(argc, argv, &options)) {
    std::fprintf(stderr, "usage: hub_ingest_bench [--streams N] [--users K] [--seconds S] [--warmup W]\n");
    return 2;
  }
  HubSetup setup;
  setup.node_tokens = hsync::hub::testing::MakeNodeTokens(options.streams);
  absl::StatusOr<std::unique_ptr<HubProcess>> hub = HubProcess::Start(setup);
  if (!hub.ok()) {
    std::fprintf(stderr, "cannot start the hub: %s\n", hub.status().ToString().c_str());
    return 1;
  }
  std::printf("hub_ingest_bench: %d streams x %d-user reports, %d s measured after %d s warm-up\n",
              options.streams, options.users, options.seconds, options.warmup);
  std::printf("journal: %s/journal.db (ext4, synchronous=FULL), parent unreachable (ingest only)\n",
              (*hub)->dir().c_str());

  // A pool of users; each stream reports a window of them with random deltas.
  const int pool = std::max(20'000, options.users * 4);
  const absl::Time start = absl::Now();
  const absl::Time measure_from = start + absl::Seconds(options.warmup);
  const absl::Time stop_at = measure_from + absl::Seconds(options.seconds);
  std::atomic<long> reports{0};
  std::atomic<long> errors{0};
  std::vector<std::vector<double>> latencies(options.streams);
  double hub_cpu_at_measure = 0;  // written by stream 0 when measuring starts
  std::atomic<bool> cpu_sampled{false};
  std::vector<std::thread> threads;
  for (int s = 0; s < options.streams; ++s) {
    threads.emplace_back([&, s] {
      const std::string node = absl::StrCat("node-", s);
      SimulatedChild child(node, setup.node_tokens.at(node), (*hub)->channel());
      absl::BitGen rng;
      SimulatedChild::Deltas deltas;
      const int offset = absl::Uniform(rng, 0, pool - options.users);
      for (int u = 0; u < options.users; ++u) {
        deltas.emplace_back(hsync::hub::testing::TestUserUuid(offset + u, 0xbe),
                            absl::Uniform<uint64_t>(rng, 1, 50'000'000));
      }
      while (absl::Now() < stop_at) {
        UsageReport report = child.Next(deltas);
        const absl::Time sent = absl::Now();
        ReportAck ack;
        grpc::Status status = child.Send(report, &ack, absl::Seconds(30));
        const absl::Time acked = absl::Now();
        if (!status.ok() || ack.acked_seq() != report.seq()) {
          ++errors;
          continue;
        }
        if (sent >= measure_from && acked <= stop_at) {
          ++reports;
          latencies[s].push_back(absl::ToDoubleMilliseconds(acked - sent));
        }
        if (s == 0 && !cpu_sampled.load() && sent >= measure_from) {
          cpu_sampled = true;
          hub_cpu_at_measure = CpuSeconds((*hub)->pid());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double hub_cpu = CpuSeconds((*hub)->pid()) - hub_cpu_at_measure;

  std::vector<double> all;
  for (auto& per_stream : latencies) all.insert(all.end(), per_stream.begin(), per_stream.end());
  const double deltas_per_second =
      static_cast<double>(reports.load()) * options.users / options.seconds;
  std::printf("acked reports: %ld in %d s (%ld errors)\n", reports.load(), options.seconds,
              errors.load());
  std::printf("user-deltas/s: %.0f   (target >= 100000)\n", deltas_per_second);
  const double p50 = Percentile(all, 0.50);
  const double p90 = Percentile(all, 0.90);
  const double p99 = Percentile(all, 0.99);
  const double max = all.empty() ? 0 : all.back();
  std::printf("ack latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", p50, p90, p99, max);
  std::printf("hub CPU: %.1f s over %d s (%.0f%% of one core; the bench clients share the 2 cores)\n",
              hub_cpu, options.seconds, 100.0 * hub_cpu / options.seconds);
  absl::StatusOr<hiddify_sync::v1::HubStatus> status = (*hub)->Status();
  if (status.ok()) {
    std::printf("journal after the run: %llu raw reports, %llu users pending, %llu bytes pending\n",
                static_cast<unsigned long long>(status->journal_reports()),
                static_cast<unsigned long long>(status->pending_users()),
                static_cast<unsigned long long>(status->pending_bytes()));
  }
  return 0;
}
