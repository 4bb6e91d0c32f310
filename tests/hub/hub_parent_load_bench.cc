// hub_parent_load_bench: how hard the hub leans on the parent panel. Every
// PATCH makes a real panel re-apply its proxy configuration, so what matters
// is PATCHes, not bytes. The real hub binary, simulated children over gRPC,
// panelsim over MariaDB as the parent; figures from panelsim's call counters.
//
// Part 1 — PATCHes per apply round vs number of children. 1, 10 and 50
// children each report deltas for the same U users (every user has traffic
// on every child, 3 reports each) within one max_apply_delay window. The hub
// sums them: the round costs one PATCH per distinct user, whatever the
// number of children (a per-child writer would send children x U).
//
// Part 2 — PATCHes per minute vs max_apply_delay (5 s, 60 s, 300 s), with 10
// children reporting every user every 10 s. Run on a clock scaled 10x: every
// duration the hub and the children use (report interval, apply interval,
// max_apply_delay) is divided by 10 and the run lasts 1/10 of the simulated
// time; counts per simulated minute are then the same as at full scale as
// long as the hub keeps up (it does: it is idle most of each cycle).
//
//   hub_parent_load_bench [--users 500] [--rate-users 100] [--sim-minutes 10]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/units.h"
#include "nlohmann/json.hpp"
#include "tests/hub/hub_harness.h"
#include "tests/support/panelsim_runner.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
void StopSharedMariaDb();
}  // namespace hsync::testing

namespace {

using hsync::hub::testing::HubProcess;
using hsync::hub::testing::HubSetup;
using hsync::hub::testing::SimulatedChild;
using hsync::hub::testing::TestUserUuid;
using hsync::testing::PanelsimRunner;

struct Options {
  int users = 500;       // part 1
  int rate_users = 100;  // part 2
  int sim_minutes = 10;  // part 2, per max_apply_delay
};

constexpr int kScale = 10;

struct Calls {
  int64_t patches = 0;
  int64_t gets = 0;
  int64_t lists = 0;
};

Calls ReadCalls(PanelsimRunner& panel) {
  Calls calls;
  auto answer = panel.Control("GET", "counters");
  if (!answer.ok()) return calls;
  nlohmann::json json = nlohmann::json::parse(answer->body, nullptr, false);
  if (!json.is_object() || !json.contains("calls")) return calls;
  calls.patches = json["calls"].value("PATCH patch_user", int64_t{0});
  calls.gets = json["calls"].value("GET get_user", int64_t{0});
  calls.lists = json["calls"].value("GET list_users", int64_t{0});
  return calls;
}

bool CreateUsers(PanelsimRunner& panel, int count, int salt) {
  for (int i = 0; i < count; ++i) {
    const std::string body = absl::StrCat("{\"uuid\":\"", TestUserUuid(i, salt), "\",\"name\":\"u", i,
                                          "\",\"package_days\":30,\"usage_limit_GB\":100000.0}");
    auto answer = panel.Api("POST", "admin/user/", body);
    if (!answer.ok() || answer->status != 200) {
      std::fprintf(stderr, "cannot create user %d: %s\n", i,
                   answer.ok() ? answer->body.c_str() : answer.status().ToString().c_str());
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::unique_ptr<HubProcess>> StartHub(PanelsimRunner& panel, HubSetup setup) {
  setup.parent_url = panel.base_url();
  setup.parent_api_key = panel.api_key();
  setup.node_tokens = hsync::hub::testing::MakeNodeTokens(50);
  setup.poll_interval = "1h";  // keep list reads out of the counts
  return HubProcess::Start(setup);
}

SimulatedChild::Deltas AllUsers(int users, int salt, absl::BitGen& rng) {
  SimulatedChild::Deltas deltas;
  for (int i = 0; i < users; ++i) {
    deltas.emplace_back(TestUserUuid(i, salt), absl::Uniform<uint64_t>(rng, 1, 20'000'000));
  }
  return deltas;
}

int PartOne(PanelsimRunner& panel, const Options& options) {
  std::printf("\n== Part 1: PATCHes per apply round, %d users with traffic on every child ==\n",
              options.users);
  if (!CreateUsers(panel, options.users, 0x11)) return 1;
  HubSetup setup;
  setup.max_apply_delay = "3s";
  setup.apply_interval = "1s";
  auto hub = StartHub(panel, setup);
  if (!hub.ok()) {
    std::fprintf(stderr, "hub: %s\n", hub.status().ToString().c_str());
    return 1;
  }
  std::printf("%8s %9s %12s %14s %9s %9s %16s\n", "children", "reports", "user-deltas",
              "distinct users", "PATCHes", "GETs", "PATCHes/user");
  for (int children : {1, 10, 50}) {
    panel.Control("DELETE", "counters").IgnoreError();
    std::atomic<long> reports{0};
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < children; ++c) {
      threads.emplace_back([&, c] {
        const std::string node = absl::StrCat("node-", c);
        SimulatedChild child(node, (*hub)->setup().node_tokens.at(node), (*hub)->channel());
        absl::BitGen rng;
        for (int r = 0; r < 3; ++r) {
          if (child.Report(AllUsers(options.users, 0x11, rng)).ok()) {
            ++reports;
          } else {
            ++errors;
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    if (errors.load() > 0 || !(*hub)->WaitUntilApplied(absl::Seconds(120))) {
      std::fprintf(stderr, "children=%d: %d report errors or not applied in time\n", children,
                   errors.load());
      return 1;
    }
    const Calls calls = ReadCalls(panel);
    std::printf("%8d %9ld %12ld %14d %9lld %9lld %16.2f\n", children, reports.load(),
                reports.load() * options.users, options.users,
                static_cast<long long>(calls.patches), static_cast<long long>(calls.gets),
                static_cast<double>(calls.patches) / options.users);
    std::fflush(stdout);
  }
  return 0;
}

int PartTwo(PanelsimRunner& panel, const Options& options) {
  std::printf("\n== Part 2: PATCHes per minute, 10 children reporting %d users every 10 s ==\n",
              options.rate_users);
  std::printf("(clock scaled %dx: report every %d ms, apply interval %d ms, %d simulated minutes "
              "per case)\n", kScale, 10'000 / kScale, 1000 / kScale, options.sim_minutes);
  if (!CreateUsers(panel, options.rate_users, 0x22)) return 1;
  std::printf("%16s %16s %14s %20s %22s\n", "max_apply_delay", "PATCHes/min", "GETs/min",
              "PATCHes/user/hour", "per-child writer/min");
  for (int delay_s : {5, 60, 300}) {
    HubSetup setup;
    setup.max_apply_delay = absl::StrCat(delay_s * 1000 / kScale, "ms");
    setup.apply_interval = absl::StrCat(1000 / kScale, "ms");
    auto hub = StartHub(panel, setup);
    if (!hub.ok()) {
      std::fprintf(stderr, "hub: %s\n", hub.status().ToString().c_str());
      return 1;
    }
    // Warm up for one max_apply_delay (plus a report interval), then count.
    const absl::Duration report_every = absl::Milliseconds(10'000 / kScale);
    const absl::Duration warmup = absl::Milliseconds(delay_s * 1000 / kScale) + report_every;
    const absl::Duration measured = absl::Seconds(60) * options.sim_minutes / kScale;
    const absl::Time start = absl::Now();
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < 10; ++c) {
      threads.emplace_back([&, c] {
        const std::string node = absl::StrCat("node-", c);
        SimulatedChild child(node, (*hub)->setup().node_tokens.at(node), (*hub)->channel());
        absl::BitGen rng;
        absl::Time next = start + report_every * c / 10;  // children are not in lockstep
        while (!stop.load()) {
          absl::SleepFor(next - absl::Now());
          if (!child.Report(AllUsers(options.rate_users, 0x22, rng)).ok()) ++errors;
          next += report_every;
        }
      });
    }
    absl::SleepFor(warmup);
    const Calls before = ReadCalls(panel);
    absl::SleepFor(measured);
    const Calls after = ReadCalls(panel);
    stop = true;
    for (std::thread& thread : threads) thread.join();
    const double minutes = options.sim_minutes;
    const double patches_per_minute = (after.patches - before.patches) / minutes;
    std::printf("%14d s %16.0f %14.0f %20.1f %22d\n", delay_s, patches_per_minute,
                (after.gets - before.gets) / minutes,
                patches_per_minute * 60 / options.rate_users, 10 * options.rate_users * 6);
    std::fflush(stdout);
    if (errors.load() > 0) std::fprintf(stderr, "%d report errors\n", errors.load());
    (*hub)->Terminate().IgnoreError();
  }
  std::printf("(expected: users x 60 / max(max_apply_delay, report interval 10 s) per minute)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    int n = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &n) || n <= 0) return 2;
    if (flag == "--users") options.users = n;
    else if (flag == "--rate-users") options.rate_users = n;
    else if (flag == "--sim-minutes") options.sim_minutes = n;
    else return 2;
  }
  hsync::testing::PanelsimOptions panel_options;
  panel_options.database = hsync::testing::UniqueDatabaseName("parent_load");
  auto panel = PanelsimRunner::Start(panel_options);
  if (!panel.ok()) {
    std::fprintf(stderr, "panelsim: %s\n", panel.status().ToString().c_str());
    return 1;
  }
  std::printf("hub_parent_load_bench: parent = panelsim over MariaDB, counts from its counters\n");
  int code = PartOne(**panel, options);
  if (code == 0) code = PartTwo(**panel, options);
  panel->reset();
  hsync::testing::StopSharedMariaDb();
  return code;
}
