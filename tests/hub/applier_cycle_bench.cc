// hub_applier_cycle_bench: the applier's per-cycle cost with many users
// pending and none due (issue 13). "before": what every cycle did until the
// pending index -- read every pending row (Journal::PendingUsers), let the
// rate tracker look at every user and rank every user (SelectDueUsers with a
// roster lookup and a rate each). "after":
// Applier::RunOneCycle with nothing changed, with 10 users' bytes changed, and
// its periodic passes (everyone's urgency every 30 s, a full re-read every 5 min).
//
//   hub_applier_cycle_bench [--users 100000] [--cycles 20] [--before 1] [--dir DIR]
// (--before 0 skips the old-way cycles, so that the RSS growth of the first
// cycle is the applier's own: the index, the rates, the urgency.)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "hub/apply/applier.h"
#include "hub/apply/apply_scheduler.h"
#include "hub/apply/usage_rate_tracker.h"
#include "hub/journal/journal.h"
#include "tests/hub/journal_only_writer.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/support/child_process.h"

namespace {

using hsync::hub::testing::Delta;
using hsync::hub::testing::MakeReport;
using hsync::hub::testing::TestUuid;

hiddify_sync::v1::User View() {
  hiddify_sync::v1::User u;
  u.set_usage_limit_bytes(1ull << 40);
  u.set_current_usage_bytes(1ull << 30);
  return u;
}

// This process's resident set, in MB.
double RssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int users = 100'000;
  int cycles = 20;
  int run_before = 1;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--dir") {
      dir = argv[i + 1];
    } else if ((key == "--users" && absl::SimpleAtoi(argv[i + 1], &users)) ||
               (key == "--cycles" && absl::SimpleAtoi(argv[i + 1], &cycles)) ||
               (key == "--before" && absl::SimpleAtoi(argv[i + 1], &run_before))) {
    } else {
      std::fprintf(stderr, "bad argument %s\n", key.c_str());
      return 2;
    }
  }
  if (dir.empty()) dir = hsync::testing::MakeTempDir("applier_cycle_bench");
  auto opened = hsync::hub::Journal::Open(dir + "/journal.sqlite");
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<hsync::hub::Journal> journal = std::move(*opened);
  uint64_t seq = 0;
  constexpr int kPerReport = 10'000;
  for (int first = 0; first < users; first += kPerReport) {
    std::vector<Delta> deltas;
    for (int i = first; i < std::min(users, first + kPerReport); ++i) {
      deltas.push_back({TestUuid(i + 1), 1000});
    }
    if (!journal->Accept(MakeReport("node-a", 1, ++seq, deltas)).ok()) return 1;
  }
  auto lookup = [](const std::string&) -> std::optional<hiddify_sync::v1::User> { return View(); };
  hsync::hub::ApplierOptions options;
  options.max_apply_delay = absl::Hours(1);  // none due during the run

  // Before: a full read, a look of the rate tracker at everyone and a full
  // ranking per cycle (what ApplyScheduler::Plan did).
  std::vector<double> before;
  double rss_old_way = 0;
  const double rss_start = RssMb();
  {  // the old cycles' state goes before the applier starts
    hsync::hub::UsageRateTracker rates;
    const hsync::hub::ApplySchedule schedule{options.max_apply_delay, options.urgent_margin_bytes,
                                             options.max_users_per_cycle, options.urgent_horizon};
    for (int c = 0; c < (run_before != 0 ? cycles : 0); ++c) {
      const absl::Time start = absl::Now();
      auto pending = journal->PendingUsers();
      if (!pending.ok()) return 1;
      const absl::Time now = absl::Now();
      rates.Observe(*pending, now);
      auto due = hsync::hub::SelectDueUsers(
          *pending, now, schedule, lookup, nullptr,
          [&](const std::string& uuid) { return rates.BytesPerSecond(uuid); });
      if (!due.empty()) return 1;
      before.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
    rss_old_way = RssMb();
  }

  // After: the applier's cycle on its pending index.
  std::vector<std::string> written;
  hsync::hub::ApplierHooks hooks;
  hooks.lookup_user = lookup;
  hsync::hub::Applier applier(
      journal.get(),
      std::make_unique<hsync::hub::testing::JournalOnlyWriter>(journal.get(), &written), hooks,
      options);
  const absl::Time t0 = absl::Now();
  const double rss_before = RssMb();
  absl::Time start = absl::Now();
  if (!applier.RunOneCycle(t0).ok()) return 1;
  const double first_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  const double rss_after = RssMb();
  std::vector<double> idle, ten;
  for (int c = 0; c < cycles; ++c) {
    start = absl::Now();
    if (!applier.RunOneCycle(t0 + absl::Seconds(1 + 2 * c)).ok()) return 1;
    idle.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    std::vector<Delta> deltas;
    for (int i = 0; i < 10; ++i) deltas.push_back({TestUuid((c * 10 + i) * 97 % users + 1), 5});
    if (!journal->Accept(MakeReport("node-a", 1, ++seq, deltas)).ok()) return 1;
    start = absl::Now();
    if (!applier.RunOneCycle(t0 + absl::Seconds(2 + 2 * c)).ok()) return 1;
    ten.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (applier.Stats().pending_rows_read_last_cycle != 10) return 1;
  }
  // The periodic passes: every user's urgency judged again (in memory), and
  // every pending row read again.
  const absl::Time later = t0 + absl::Seconds(2 * cycles + 1);
  start = absl::Now();
  if (!applier.RunOneCycle(later + hsync::hub::ApplyScheduler::kRankAllInterval).ok()) return 1;
  const double rank_all_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  start = absl::Now();
  if (!applier.RunOneCycle(t0 + absl::Minutes(5)).ok()) return 1;
  const double full_again_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (applier.Stats().pending_full_reads != 2) return 1;
  std::printf("%d pending users, none due, median of %d cycles:\n", users, cycles);
  if (run_before != 0) {
    std::printf("  before (read all, rates of all, rank all): %.2f ms per cycle\n", Median(before));
    std::printf("  RSS at start / after the old cycles: %.1f / %.1f MB\n", rss_start, rss_old_way);
  }
  std::printf("  after, first cycle (full read):    %.2f ms\n", first_ms);
  std::printf("  RSS before / after the first cycle: %.1f / %.1f MB (the index, rates, urgency)\n",
              rss_before, rss_after);
  std::printf("  after, nothing changed:            %.3f ms per cycle (0 rows read)\n",
              Median(idle));
  std::printf("  after, 10 users changed:           %.3f ms per cycle (10 rows read)\n",
              Median(ten));
  std::printf("  after, every 30 s (re-judge all):  %.2f ms\n", rank_all_ms);
  std::printf("  after, every 5 min (full re-read): %.2f ms\n", full_again_ms);
    return written.empty() ? 0 : 1;
}
