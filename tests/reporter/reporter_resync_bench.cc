// Benchmark: a child resyncing from empty with a big roster, the way the hub
// sends it since issue 13 — a full roster in 64 chunks over a real gRPC
// stream (FakeHub) into the real RosterFollower and MariaDB — while the
// child panel's usage task keeps writing: a thread adds usage to the child's
// own first users (`UPDATE user SET current_usage = current_usage + d WHERE
// id = ?`, autocommit, as the panel's task does) and times every statement.
// Then the same roster as ONE unchunked full update (the format before issue
// 13) into a second empty child, with the same usage loop, for comparison.
// Targets (issue 13): < 60 s for 100,000 users; no usage write blocked > 1 s.
//
//   reporter_resync_bench [users=100000]
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "reporter/outbox/hub_channel.h"
#include "reporter/roster/roster_follower.h"
#include "tests/reporter/child_db.h"
#include "tests/reporter/fake_hub.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
void StopSharedMariaDb();
}

namespace {

using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::User;

constexpr char kToken[] = "resync-bench-token";
constexpr int kLocalUsers = 1000;  // rows the usage loop writes (also in the roster)

User MakeUser(const std::string& uuid, int n) {
  User u;
  u.set_uuid(uuid);
  u.set_name(absl::StrCat("customer ", n));
  u.set_usage_limit_bytes(uint64_t{100} << 30);
  u.set_package_days(30);
  u.set_start_date("2024-03-01");
  u.set_mode("monthly");
  u.set_last_reset_time("2024-03-01 00:00:00");
  u.set_last_online("2024-03-05 12:00:00");
  u.set_enable(true);
  u.set_is_active(true);
  u.set_comment("");
  u.set_lang("en");
  u.set_ed25519_private_key(absl::StrCat("-----BEGIN OPENSSH PRIVATE KEY-----\n",
                                         std::string(380, 'A' + n % 26),
                                         "\n-----END OPENSSH PRIVATE KEY-----\n"));
  u.set_ed25519_public_key(absl::StrCat("ssh-ed25519 ", std::string(68, 'B' + n % 20)));
  u.set_wg_pk(std::string(44, 'p'));
  u.set_wg_pub(std::string(44, 'q'));
  u.set_wg_psk(std::string(44, 'r'));
  return u;
}

// The child panel's usage task: keeps adding usage to rows by id and records
// the slowest statement.
class UsageLoop {
 public:
  UsageLoop(const hsync::MariaDbOptions& db, const std::string& table, int64_t max_id)
      : thread_([this, db, table, max_id] { Run(db, table, max_id); }) {}
  ~UsageLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  double max_ms() const { return max_ms_; }
  long writes() const { return writes_; }

 private:
  void Run(const hsync::MariaDbOptions& db, const std::string& table, int64_t max_id) {
    auto conn = hsync::MariaDbConnection::Connect(db);
    if (!conn.ok()) {
      std::fprintf(stderr, "usage loop: %s\n", conn.status().ToString().c_str());
      return;
    }
    std::mt19937 rng(7);
    while (!stop_) {
      const int64_t id = 1 + static_cast<int64_t>(rng() % max_id);
      const absl::Time t = absl::Now();
      auto done = (*conn)->Execute(
          absl::StrCat("UPDATE ", table, " SET current_usage = current_usage + 1000 WHERE id = ", id));
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
      if (!done.ok()) std::fprintf(stderr, "usage loop: %s\n", done.status().ToString().c_str());
      if (ms > max_ms_) max_ms_ = ms;
      ++writes_;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<double> max_ms_{0};
  std::atomic<long> writes_{0};
  std::thread thread_;
};

// The first kLocalUsers roster users, inserted as the child's own rows first.
std::vector<std::string> Uuids(int users) {
  std::vector<std::string> uuids;
  uuids.reserve(users);
  for (int i = 0; i < users; ++i) uuids.push_back(hsync::testing::RandomUuid());
  return uuids;
}

void InsertLocal(hsync::testing::ChildDb& child, const std::vector<std::string>& uuids) {
  for (int i = 0; i < kLocalUsers; ++i) child.InsertUser(uuids[i], 0);
}

}  // namespace

int main(int argc, char** argv) {
  const int users = argc > 1 ? std::atoi(argv[1]) : 100000;
  const std::vector<std::string> uuids = Uuids(users);

  // --- Chunked, through the follower.
  {
    hsync::testing::ChildDb child("resync_chunked");
    InsertLocal(child, uuids);
    hsync::reporter::StateStore store(child.state_db(), false);
    if (!store.EnsureSchema(child.conn()).ok()) return 1;
    hsync::reporter::RosterApplyOptions options;
    options.panel_database = child.panel_db();
    hsync::reporter::RosterApplier applier(&store, options);
    hsync::reporter::StatusBoard board;
    auto hub = hsync::testing::FakeHub::Start(kToken);
    hsync::reporter::HubConfig hub_config;
    hub_config.address = hub->address();
    hub_config.plaintext = true;
    hsync::reporter::RosterFollowerOptions follower_options;
    follower_options.node_id = "bench";
    follower_options.token = kToken;
    follower_options.panel_database = child.panel_db();
    follower_options.state = &store;
    hsync::reporter::RosterFollower follower(hsync::reporter::MakeHubChannel(hub_config),
                                             child.Options(), &applier, nullptr, &board,
                                             follower_options);
    follower.Start();
    if (!hsync::testing::WaitFor([&] { return hub->open_watchers() == 1; }, absl::Seconds(10))) {
      return 1;
    }
    constexpr int kChunks = 64;
    std::vector<RosterUpdate> chunks(kChunks);
    for (int c = 0; c < kChunks; ++c) {
      chunks[c].set_version(1);
      chunks[c].set_full(true);
      chunks[c].set_roster_epoch(77);
      chunks[c].set_chunk_index(c);
      chunks[c].set_chunk_count(kChunks);
    }
    for (int i = 0; i < users; ++i) *chunks[i % kChunks].add_upserts() = MakeUser(uuids[i], i);
    UsageLoop usage(child.Options(), child.UserTable(), kLocalUsers);
    const absl::Time t0 = absl::Now();
    for (const auto& chunk : chunks) hub->Broadcast(chunk);
    if (!hsync::testing::WaitFor([&] { return board.Snapshot().roster_version_applied() == 1; },
                                 absl::Seconds(900))) {
      std::fprintf(stderr, "chunked roster not applied: %s\n", board.Snapshot().last_error().c_str());
      return 1;
    }
    const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
    usage.Stop();
    std::printf(
        "RESULT chunked full roster (%d chunks) of %d users into an empty child: %.1f s, created %llu"
        " (target < 60 s); usage task: %ld writes, slowest %.0f ms (target < 1000 ms)\n",
        kChunks, users, seconds, static_cast<unsigned long long>(board.Snapshot().users_created()),
        usage.writes(), usage.max_ms());
    follower.Stop();
  }

  // --- One unchunked full update in one transaction (before issue 13).
  {
    hsync::testing::ChildDb child("resync_whole");
    InsertLocal(child, uuids);
    hsync::reporter::StateStore store(child.state_db(), false);
    if (!store.EnsureSchema(child.conn()).ok()) return 1;
    hsync::reporter::RosterApplyOptions options;
    options.panel_database = child.panel_db();
    hsync::reporter::RosterApplier applier(&store, options);
    RosterUpdate full;
    full.set_version(1);
    full.set_full(true);
    for (int i = 0; i < users; ++i) *full.add_upserts() = MakeUser(uuids[i], i);
    UsageLoop usage(child.Options(), child.UserTable(), kLocalUsers);
    absl::SleepFor(absl::Milliseconds(100));
    const absl::Time t0 = absl::Now();
    auto applied = applier.Apply(child.conn(), full);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
    absl::SleepFor(absl::Milliseconds(100));
    usage.Stop();
    if (!applied.ok()) {
      std::fprintf(stderr, "%s\n", applied.status().ToString().c_str());
      return 1;
    }
    std::printf(
        "RESULT one unchunked full roster of %d users (one transaction, before issue 13): %.1f s;"
        " usage task: %ld writes, slowest %.0f ms\n",
        users, seconds, usage.writes(), usage.max_ms());
  }
  hsync::testing::StopSharedMariaDb();
  return 0;
}
