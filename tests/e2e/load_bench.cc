// e2e_load_bench: the hub under production-like load. The parent is a real
// panelsim with 10,000 users; the children are SIMULATED: 50 gRPC clients
// that behave like reporters (node token, stream id, seq, one usage per
// active user every 5 s, resent until acknowledged, a WatchRoster stream
// each), because 50 real reporters + 50 child panels do not fit on 2 cores.
// Prints over time: hub CPU and RSS (/proc), ack latency p50/p99, journal
// depth (GetStatus pending users/bytes), parent calls; then PATCHes per apply
// window vs distinct active users, end-to-end time from a report's
// collected_at to its bytes on the parent (watched users), and whether the
// parent's increase equals the bytes acknowledged, to the byte.
//   e2e_load_bench [--seconds 180] [--children 50] [--users-per-child 2000]
//                  [--parent-users 10000] [--interval-s 5] [--max-apply-delay-s 60]
//                  [--max-bytes 1000000] [--no-watch] [--seed N]
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/mariadb.h"
#include "common/status_macros.h"
#include "tests/e2e/bench_support.h"
#include "tests/e2e/hub_runner.h"
#include "tests/e2e/invariants.h"
#include "tests/e2e/load_stream.h"
#include "tests/e2e/system_under_test.h"
#include "tests/support/panelsim_runner.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
void StopSharedMariaDb();  // tests/support/test_mariadb.cc
}  // namespace hsync::testing

namespace hsync::e2e {
namespace {

using hsync::testing::PanelsimOptions;
using hsync::testing::PanelsimRunner;
using hsync::testing::SharedMariaDb;

struct LoadConfig {
  int seconds = 180;
  int children = 50;
  int users_per_child = 2000;
  int parent_users = 10000;
  int interval_s = 5;
  int max_apply_delay_s = 60;
  uint64_t max_bytes = 1'000'000;
  bool watch = true;
  uint64_t seed = 1;
  int watched_users = 5;
};

// Follows the watched users on the parent's database: when a watched report's
// bytes show, its end-to-end latency is recorded.
class EndToEndSampler {
 public:
  EndToEndSampler(std::string database, std::map<std::string, uint64_t> base)
      : database_(std::move(database)), base_(std::move(base)) {}

  void Add(std::vector<WatchedReport> reports) {
    pending_.insert(pending_.end(), reports.begin(), reports.end());
  }
  void Poll() {
    if (pending_.empty()) return;
    if (conn_ == nullptr) {
      auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(database_));
      if (!conn.ok()) return;
      conn_ = *std::move(conn);
    }
    std::vector<std::string> quoted;
    for (const auto& [uuid, unused] : base_) quoted.push_back(absl::StrCat("'", uuid, "'"));
    auto rows = conn_->Query(absl::StrCat("SELECT uuid, current_usage FROM user WHERE uuid IN (",
                                          absl::StrJoin(quoted, ","), ")"));
    if (!rows.ok()) {
      conn_.reset();
      return;
    }
    const absl::Time now = absl::Now();
    std::map<std::string, uint64_t> value;
    for (const auto& row : rows->rows) {
      uint64_t v = 0;
      if (absl::SimpleAtoi(row[1].value_or("0"), &v)) value[row[0].value_or("")] = v;
    }
    std::vector<WatchedReport> still;
    for (const WatchedReport& r : pending_) {
      if (value[r.uuid] >= base_[r.uuid] + r.cumulative) {
        seconds_.push_back(absl::ToDoubleSeconds(now - r.collected_at));
      } else {
        still.push_back(r);
      }
    }
    pending_.swap(still);
  }
  std::vector<double>& seconds() { return seconds_; }
  size_t pending() const { return pending_.size(); }

 private:
  std::string database_;
  std::map<std::string, uint64_t> base_;
  std::unique_ptr<MariaDbConnection> conn_;
  std::vector<WatchedReport> pending_;
  std::vector<double> seconds_;
};

int Usage() {
  std::fprintf(stderr,
               "usage: e2e_load_bench [--seconds N] [--children N] [--users-per-child N]\n"
               "                      [--parent-users N] [--interval-s N] [--max-apply-delay-s N]\n"
               "                      [--max-bytes N] [--no-watch] [--seed N]\n");
  return 2;
}

absl::Status Run(const LoadConfig& config) {
  std::mt19937_64 rng(config.seed);
  std::printf(
      "e2e_load_bench (seed %llu)\n"
      "  parent: real panelsim with %d users. children: %d SIMULATED reporters (gRPC clients "
      "sending exactly what a reporter sends: node token, stream id, seq, %d usages every %d s, "
      "resent until acknowledged%s) - real reporters + child panels do not fit on 2 cores.\n"
      "  hub: max_apply_delay %d s, apply interval 1 s, roster poll 30 s. %d s of load; usage "
      "per user per report uniform in [1, %llu] bytes.\n",
      static_cast<unsigned long long>(config.seed), config.parent_users, config.children,
      config.users_per_child, config.interval_s, config.watch ? ", and a WatchRoster stream each" : "",
      config.max_apply_delay_s, config.seconds, static_cast<unsigned long long>(config.max_bytes));
  std::fflush(stdout);

  const absl::Time setup = absl::Now();
  PanelsimOptions parent_options;
  parent_options.database = hsync::testing::UniqueDatabaseName("load_parent");
  parent_options.demo_users = config.parent_users;
  parent_options.extra_args = {"--seed", std::to_string(config.seed)};
  ASSIGN_OR_RETURN(auto parent, PanelsimRunner::Start(parent_options));
  using UsageMap = std::map<std::string, uint64_t>;
  ASSIGN_OR_RETURN(const UsageMap base, ReadParentUsage(parent_options.database));
  std::vector<std::string> all_users;
  for (const auto& [uuid, unused] : base) all_users.push_back(uuid);

  std::map<std::string, std::string> tokens;
  for (int i = 0; i < config.children; ++i) {
    tokens[absl::StrCat("child-", i + 1)] = absl::StrFormat("load-token-%d-%016x", i + 1, rng());
  }
  HubRunnerOptions hub_options;
  hub_options.parent_url = parent->base_url();
  hub_options.parent_api_key = parent->api_key();
  hub_options.node_tokens = tokens;
  hub_options.apply_interval = "1s";
  hub_options.max_apply_delay = absl::StrCat(config.max_apply_delay_s, "s");
  hub_options.roster_poll_interval = "30s";
  hub_options.parent_timeout = "20s";
  hub_options.log_level = "warning";
  ASSIGN_OR_RETURN(auto hub, HubRunner::Start(hub_options));

  // Watched users are reported by child 1 only, so their expected values are exact.
  std::shuffle(all_users.begin(), all_users.end(), rng);
  const std::vector<std::string> watched(all_users.begin(), all_users.begin() + config.watched_users);
  const std::vector<std::string> others(all_users.begin() + config.watched_users, all_users.end());
  std::map<std::string, uint64_t> watched_base;
  for (const std::string& uuid : watched) watched_base[uuid] = base.at(uuid);
  std::set<std::string> active;
  std::vector<std::unique_ptr<LoadStream>> streams;
  for (int i = 0; i < config.children; ++i) {
    LoadStreamOptions o;
    o.node_id = absl::StrCat("child-", i + 1);
    o.token = tokens[o.node_id];
    o.target = hub->target();
    std::vector<std::string> pool = others;
    std::shuffle(pool.begin(), pool.end(), rng);
    const size_t n = std::min(pool.size(), static_cast<size_t>(config.users_per_child));
    o.users.assign(pool.begin(), pool.begin() + static_cast<long>(n));
    if (i == 0) {
      for (size_t w = 0; w < watched.size() && w < o.users.size(); ++w) o.users[w] = watched[w];
      o.watched.insert(watched.begin(), watched.end());
    }
    active.insert(o.users.begin(), o.users.end());
    o.max_bytes = config.max_bytes;
    o.interval = absl::Seconds(config.interval_s);
    o.phase = absl::Seconds(config.interval_s) * (static_cast<double>(i) / config.children);
    o.watch_roster = config.watch;
    o.seed = rng();
    streams.push_back(std::make_unique<LoadStream>(std::move(o)));
  }
  std::printf("  setup: %.1f s; distinct active users %zu of %d\n\n",
              absl::ToDoubleSeconds(absl::Now() - setup), active.size(), config.parent_users);
  std::printf("%6s %7s %8s %8s %8s %8s %12s %14s %9s %7s %8s %8s\n", "t(s)", "hubCPU%", "RSS(MB)",
              "reports", "ackp50ms", "ackp99ms", "pend.users", "pend.bytes", "journal", "PATCH",
              "GETuser", "e2e-n");
  std::fflush(stdout);

  EndToEndSampler sampler(parent_options.database, watched_base);
  ASSIGN_OR_RETURN(ParentCalls calls_start, ReadParentCalls(*parent));
  for (auto& s : streams) s->Start();
  const absl::Time start = absl::Now();
  const int hub_pid = hub->pid();
  ASSIGN_OR_RETURN(ProcSample last_proc, SampleProcess(hub_pid));
  absl::Time last_time = start;
  ParentCalls last_calls = calls_start;
  std::vector<double> all_acks;
  double max_cpu = 0, cpu_sum = 0;
  int cpu_rows = 0;
  uint64_t max_rss = 0, max_pending_bytes = 0, max_pending_users = 0;
  uint64_t last_reports = 0;
  struct Window {
    uint64_t patches = 0, gets = 0;
  };
  std::vector<Window> windows;
  ParentCalls window_start_calls = calls_start;
  absl::Time window_start = start;

  auto row = [&](bool final_row) -> absl::Status {
    std::vector<double> acks;
    uint64_t reports = 0;
    for (auto& s : streams) {
      std::vector<double> a = s->TakeAckLatencies();
      acks.insert(acks.end(), a.begin(), a.end());
      reports += s->reports_acked();
    }
    all_acks.insert(all_acks.end(), acks.begin(), acks.end());
    const absl::Time now = absl::Now();
    ASSIGN_OR_RETURN(ProcSample proc, SampleProcess(hub_pid));
    const double cpu = 100.0 * (proc.cpu_seconds - last_proc.cpu_seconds) /
                       absl::ToDoubleSeconds(now - last_time);
    ASSIGN_OR_RETURN(auto status, hub->Status());
    ASSIGN_OR_RETURN(ParentCalls calls, ReadParentCalls(*parent));
    const ParentCalls delta = calls.Minus(last_calls);
    max_cpu = std::max(max_cpu, cpu);
    cpu_sum += cpu;
    ++cpu_rows;
    max_rss = std::max(max_rss, proc.rss_bytes);
    max_pending_bytes = std::max<uint64_t>(max_pending_bytes, status.pending_bytes());
    max_pending_users = std::max<uint64_t>(max_pending_users, status.pending_users());
    std::printf("%6.0f %7.1f %8.1f %8llu %8.1f %8.1f %12llu %14llu %9llu %7llu %8llu %8zu%s\n",
                absl::ToDoubleSeconds(now - start), cpu, static_cast<double>(proc.rss_bytes) / 1e6,
                static_cast<unsigned long long>(reports - last_reports), Percentile(acks, 50),
                Percentile(acks, 99), static_cast<unsigned long long>(status.pending_users()),
                static_cast<unsigned long long>(status.pending_bytes()),
                static_cast<unsigned long long>(status.journal_reports()),
                static_cast<unsigned long long>(delta.patch_user),
                static_cast<unsigned long long>(delta.get_user), sampler.seconds().size(),
                final_row ? "  (load stopped)" : "");
    std::fflush(stdout);
    if (now - window_start >= absl::Seconds(config.max_apply_delay_s) - absl::Seconds(1)) {
      const ParentCalls w = calls.Minus(window_start_calls);
      windows.push_back({w.patch_user, w.get_user});
      window_start_calls = calls;
      window_start = now;
    }
    last_proc = proc;
    last_time = now;
    last_calls = calls;
    last_reports = reports;
    return absl::OkStatus();
  };

  absl::Time next_row = start + absl::Seconds(10);
  while (absl::Now() < start + absl::Seconds(config.seconds)) {
    absl::SleepFor(absl::Milliseconds(250));
    sampler.Add(streams[0]->TakeWatched());
    sampler.Poll();
    if (absl::Now() >= next_row) {
      RETURN_IF_ERROR(row(false));
      next_row += absl::Seconds(10);
    }
  }
  for (auto& s : streams) s->Stop();
  sampler.Add(streams[0]->TakeWatched());
  RETURN_IF_ERROR(row(true));

  // Drain: everything acknowledged must reach the parent.
  const absl::Time drain_start = absl::Now();
  bool drained = false;
  while (absl::Now() - drain_start < absl::Seconds(config.max_apply_delay_s + 180)) {
    sampler.Poll();
    auto status = hub->Status();
    if (status.ok() && status->pending_users() == 0 && status->pending_bytes() == 0) {
      drained = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  sampler.Poll();
  std::map<std::string, uint64_t> acked;
  uint64_t failed_calls = 0, roster_updates = 0;
  for (auto& s : streams) {
    for (const auto& [uuid, bytes] : s->acked_bytes()) acked[uuid] += bytes;
    failed_calls += s->failed_calls();
    roster_updates += s->roster_updates();
  }
  ASSIGN_OR_RETURN(const UsageMap after, ReadParentUsage(parent_options.database));
  UsageSnapshot before_snapshot;
  before_snapshot.parent = base;
  before_snapshot.generated.push_back({});
  UsageSnapshot after_snapshot;
  after_snapshot.parent = after;
  after_snapshot.generated.push_back(acked);
  const UsageComparison exact = CompareUsage(before_snapshot, after_snapshot);
  ASSIGN_OR_RETURN(auto final_status, hub->Status());

  std::printf("\nsummary (%d s of load, %d simulated children x %d users, %d parent users)\n",
              config.seconds, config.children, config.users_per_child, config.parent_users);
  std::printf("  ack latency (all %zu reports): p50 %.1f ms, p99 %.1f ms, max %.1f ms; %llu failed calls (resent)\n",
              all_acks.size(), Percentile(all_acks, 50), Percentile(all_acks, 99),
              Percentile(all_acks, 100), static_cast<unsigned long long>(failed_calls));
  std::printf("  hub CPU: mean %.1f%%, max %.1f%% of one core (10 s samples); RSS max %.1f MB\n",
              cpu_sum / std::max(cpu_rows, 1), max_cpu, static_cast<double>(max_rss) / 1e6);
  std::printf("  journal depth: max %llu users / %llu bytes pending; %s after the load stopped "
              "(%.1f s)\n",
              static_cast<unsigned long long>(max_pending_users),
              static_cast<unsigned long long>(max_pending_bytes),
              drained ? "drained to 0" : "NOT drained", absl::ToDoubleSeconds(absl::Now() - drain_start));
  std::printf("  parent calls per apply window (%d s) vs %zu distinct active users:\n",
              config.max_apply_delay_s, active.size());
  for (size_t i = 0; i < windows.size(); ++i) {
    std::printf("    window %zu: %llu PATCHes, %llu GET user (%.2f PATCHes per active user)\n", i + 1,
                static_cast<unsigned long long>(windows[i].patches),
                static_cast<unsigned long long>(windows[i].gets),
                static_cast<double>(windows[i].patches) / static_cast<double>(active.size()));
  }
  std::printf("    whole run: %llu PATCHes, %llu GET user, %llu GET list (hub patches_total %llu)\n",
              static_cast<unsigned long long>(last_calls.Minus(calls_start).patch_user),
              static_cast<unsigned long long>(last_calls.Minus(calls_start).get_user),
              static_cast<unsigned long long>(last_calls.Minus(calls_start).list_users),
              static_cast<unsigned long long>(final_status.patches_total()));
  std::vector<double>& e2e = sampler.seconds();
  std::printf("  end-to-end (report collected_at -> bytes on the parent), %zu samples of %d watched "
              "users: p50 %.1f s, p90 %.1f s, max %.1f s (%zu not seen)\n",
              e2e.size(), config.watched_users, Percentile(e2e, 50), Percentile(e2e, 90),
              Percentile(e2e, 100), sampler.pending());
  std::printf("  roster updates received by the simulated children: %llu\n",
              static_cast<unsigned long long>(roster_updates));
  std::printf("  exactness: parent increase vs bytes acknowledged: %s\n",
              exact.exact() ? "EXACT, to the byte" : exact.Summary().c_str());
  std::fflush(stdout);
  return exact.exact() && drained ? absl::OkStatus()
                                  : absl::DataLossError("not exact or not drained");
}

int Main(int argc, char** argv) {
  LoadConfig config;
  config.seed = E2eSeed();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has = i + 1 < argc;
    auto number = [&](auto* out) { return has && absl::SimpleAtoi(argv[++i], out); };
    bool ok = true;
    if (flag == "--seconds") ok = number(&config.seconds);
    else if (flag == "--children") ok = number(&config.children);
    else if (flag == "--users-per-child") ok = number(&config.users_per_child);
    else if (flag == "--parent-users") ok = number(&config.parent_users);
    else if (flag == "--interval-s") ok = number(&config.interval_s);
    else if (flag == "--max-apply-delay-s") ok = number(&config.max_apply_delay_s);
    else if (flag == "--max-bytes") ok = number(&config.max_bytes);
    else if (flag == "--seed") ok = number(&config.seed);
    else if (flag == "--no-watch") config.watch = false;
    else ok = false;
    if (!ok) return Usage();
  }
  if (config.children < 1 || config.parent_users < config.watched_users + 1 ||
      config.interval_s < 1 || config.max_apply_delay_s < 1 || config.max_bytes < 1) {
    return Usage();
  }
  absl::Status status = Run(config);
  if (!status.ok()) {
    std::printf("e2e_load_bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace hsync::e2e

int main(int argc, char** argv) {
  const int code = hsync::e2e::Main(argc, argv);
  hsync::testing::StopSharedMariaDb();
  return code;
}
