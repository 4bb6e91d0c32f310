// Benchmark: one collect cycle on a 100,000-user child with 10% of the users
// changed (targets: < 1 s per cycle, < 64 MB peak RSS). Prints figures.
//   reporter_collect_bench [users] [cycles]
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "reporter/collect/collector.h"
#include "tests/reporter/child_db.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
void StopSharedMariaDb();
}

namespace {

double PeakRssMiB() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
}

double CurrentRssMiB() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * 4096.0 / (1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hsync;
  using namespace hsync::reporter;
  const size_t users = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100'000;
  const int cycles = argc > 2 ? std::atoi(argv[2]) : 5;
  testing::ChildDb child("bench_collect");
  std::printf("setting up %zu users...\n", users);
  child.InsertUsers(users);
  child.Exec(absl::StrCat("UPDATE ", child.UserTable(),
                          " SET current_usage = 5000000 + id * 1000, last_online = '2024-01-01 00:00:00'"));
  StateStore store(child.state_db(), /*baseline=*/false);
  if (!store.EnsureSchema(child.conn()).ok()) return 1;
  CollectOptions options;
  options.node_id = "bench";
  options.panel_database = child.panel_db();
  if (const char* v = std::getenv("READ_BATCH")) options.read_batch = std::strtoul(v, nullptr, 10);
  if (const char* v = std::getenv("UPSERT_BATCH")) options.upsert_batch = std::strtoul(v, nullptr, 10);
  std::printf("read batch %zu users, upsert batch %zu rows\n", options.read_batch, options.upsert_batch);

  auto conn = MariaDbConnection::Connect(child.Options());
  if (!conn.ok()) return 1;
  Collector collector(&store, options);
  const double rss_before = CurrentRssMiB();
  absl::Time t0 = absl::Now();
  auto first = collector.CollectOnce(**conn, absl::Now());
  const absl::Duration first_took = absl::Now() - t0;
  if (!first.ok()) {
    std::fprintf(stderr, "%s\n", first.status().ToString().c_str());
    return 1;
  }
  std::printf("first collect (every user new: %llu users, %llu reports): %.0f ms\n",
              static_cast<unsigned long long>(first->users_reported),
              static_cast<unsigned long long>(first->last_seq - first->first_seq + 1),
              absl::ToDoubleMilliseconds(first_took));
  child.Exec(absl::StrCat("DELETE FROM `", child.state_db(), "`.outbox"));

  double total_ms = 0, max_ms = 0;
  for (int c = 0; c < cycles; ++c) {
    // 10% of users get traffic (and a new last_online), as the panel's usage task would.
    child.Exec(absl::StrCat("UPDATE ", child.UserTable(), " SET current_usage = current_usage + 2000000 + ",
                            c, ", last_online = '2024-01-02 00:00:0", c % 10, "' WHERE id % 10 = ", c % 10));
    t0 = absl::Now();
    auto r = collector.CollectOnce(**conn, absl::Now());
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    total_ms += ms;
    max_ms = std::max(max_ms, ms);
    std::printf("cycle %d: %llu users scanned, %llu reported, %llu watermarks written: %.0f ms"
                " (reading %.0f ms, writing watermarks %.0f ms)\n", c + 1,
                static_cast<unsigned long long>(r->users_scanned),
                static_cast<unsigned long long>(r->users_reported),
                static_cast<unsigned long long>(r->watermarks_written), ms,
                absl::ToDoubleMilliseconds(r->read_time), absl::ToDoubleMilliseconds(r->write_time));
    child.Exec(absl::StrCat("DELETE FROM `", child.state_db(), "`.outbox"));
  }
  std::printf("RESULT collect %zu users, 10%% changed: mean %.0f ms, max %.0f ms per cycle (target < 1000 ms)\n",
              users, total_ms / cycles, max_ms);
  std::printf("RESULT RSS: %.1f MiB before collecting, peak %.1f MiB (ru_maxrss; target < 64 MiB)\n",
              rss_before, PeakRssMiB());
  conn->reset();
  hsync::testing::StopSharedMariaDb();
  return 0;
}
