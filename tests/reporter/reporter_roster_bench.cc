// Benchmark: roster apply on a child's MariaDB. A full roster of 10,000 users
// into an empty child (target < 5 s), a 100-user change set (target < 200 ms),
// the same full roster again with 100 users changed (a reconnect), and with
// usage_mode follow a full roster in which every user's usage changed.
//   reporter_roster_bench [users]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "reporter/collect/usage_follower.h"
#include "reporter/roster/roster_applier.h"
#include "tests/reporter/child_db.h"

namespace hsync::testing {
void StopSharedMariaDb();
}

namespace {

hiddify_sync::v1::User MakeUser(int n) {
  hiddify_sync::v1::User u;
  u.set_uuid(hsync::testing::RandomUuid());
  u.set_name(absl::StrCat("customer ", n));
  u.set_usage_limit_bytes(uint64_t{100} << 30);
  u.set_package_days(30);
  u.set_start_date("2024-03-01");
  u.set_mode("monthly");
  u.set_last_reset_time("2024-03-01 00:00:00");
  u.set_last_online("2024-03-05 12:00:00");
  u.set_enable(true);
  u.set_is_active(true);
  u.set_comment("bench");
  u.set_lang("en");
  u.set_ed25519_private_key(absl::StrCat(
      "-----BEGIN OPENSSH PRIVATE KEY-----\n", std::string(380, 'A' + n % 26),
      "\n-----END OPENSSH PRIVATE KEY-----\n"));
  u.set_ed25519_public_key(absl::StrCat("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", std::string(43, 'b')));
  u.set_wg_pk(std::string(43, 'c') + "=");
  u.set_wg_pub(std::string(43, 'd') + "=");
  u.set_wg_psk(std::string(43, 'e') + "=");
  return u;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hsync;
  using namespace hsync::reporter;
  const int users = argc > 1 ? std::atoi(argv[1]) : 10'000;
  testing::ChildDb child("bench_roster");
  StateStore store(child.state_db(), false);
  if (!store.EnsureSchema(child.conn()).ok()) return 1;
  RosterApplyOptions options;
  options.panel_database = child.panel_db();
  RosterApplier applier(&store, options);

  hiddify_sync::v1::RosterUpdate full;
  full.set_version(1);
  full.set_full(true);
  for (int i = 0; i < users; ++i) *full.add_upserts() = MakeUser(i);

  absl::Time t0 = absl::Now();
  auto r = applier.Apply(child.conn(), full);
  const double full_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("RESULT full roster of %d users into an empty child: %.0f ms, created %llu (target < 5000 ms)\n",
              users, full_ms, static_cast<unsigned long long>(r->created));

  hiddify_sync::v1::RosterUpdate delta;
  delta.set_version(2);
  for (int i = 0; i < 100; ++i) {
    hiddify_sync::v1::User u = full.upserts(i * (users / 100));
    u.set_name(u.name() + " (renamed)");
    if (i % 2 == 0) u.set_is_active(false);
    *delta.add_upserts() = u;
    *full.mutable_upserts(i * (users / 100)) = u;
  }
  t0 = absl::Now();
  r = applier.Apply(child.conn(), delta);
  const double delta_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!r.ok()) return 1;
  std::printf("RESULT 100-user change set: %.1f ms, updated %llu (target < 200 ms)\n", delta_ms,
              static_cast<unsigned long long>(r->updated));

  for (int i = 0; i < 100; ++i) full.mutable_upserts(i * (users / 100) + 1)->set_comment("changed");
  full.set_version(3);
  t0 = absl::Now();
  r = applier.Apply(child.conn(), full);
  const double refull_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!r.ok()) return 1;
  std::printf("RESULT full roster of %d users with 100 changed (a reconnect): %.0f ms, updated %llu, unchanged %llu\n",
              users, refull_ms, static_cast<unsigned long long>(r->updated),
              static_cast<unsigned long long>(r->unchanged));

  child.SetAtomicUsageProcedure(true);
  UsageFollower follower(&store, child.panel_db(), nullptr);
  applier.set_usage_hook(&follower);
  for (int i = 0; i < users; ++i) full.mutable_upserts(i)->set_current_usage_bytes(uint64_t{1000} * (i + 1));
  full.set_version(4);
  t0 = absl::Now();
  r = applier.Apply(child.conn(), full);
  const double follow_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!r.ok()) return 1;
  std::printf("RESULT full roster of %d users, usage_mode follow, every counter moved: %.0f ms\n",
              users, follow_ms);
  hsync::testing::StopSharedMariaDb();
  return 0;
}
