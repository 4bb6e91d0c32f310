// hub_roster_bytes_bench: roster bytes the hub sends per minute while users
// are active, before and after coalescing usage (issue 13). In process, on
// the real RosterStore, in simulated time: N users each get one PATCH answer
// per minute with new usage and last_online (what the applier does for a
// user with traffic: max_apply_delay = 60 s), at random moments, and the
// parent's list is read every 30 s (unchanged); one user in 1,000 is blocked
// each minute (an access change, sent at once). Every delta is sent once to
// every child; the bytes are the encoded RosterUpdate messages.
//   hub_roster_bytes_bench [--users 10000] [--children 50] [--minutes 10]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "hub/roster/roster_store.h"

namespace {

using hiddify_sync::v1::User;

User MakeUser(int i) {
  User u;
  u.set_uuid(absl::StrFormat("%08x-0000-4000-8000-%012d", i, i));
  u.set_name(absl::StrFormat("customer %d", i));
  u.set_usage_limit_bytes(uint64_t{100} << 30);
  u.set_package_days(30);
  u.set_start_date("2024-03-01");
  u.set_mode("monthly");
  u.set_last_reset_time("2024-03-01 00:00:00");
  u.set_last_online("2024-03-05 12:00:00");
  u.set_enable(true);
  u.set_is_active(true);
  u.set_lang("en");
  u.set_ed25519_private_key(std::string(450, 'k'));
  u.set_ed25519_public_key(std::string(80, 'p'));
  u.set_wg_pk(std::string(44, 'w'));
  u.set_wg_pub(std::string(44, 'x'));
  u.set_wg_psk(std::string(44, 'y'));
  return u;
}

struct Result {
  double bytes_per_minute_per_child = 0;
  double messages_per_minute = 0;
};

Result Run(int users, int minutes, absl::Duration usage_interval) {
  hsync::hub::RosterStoreOptions options;
  options.usage_interval = usage_interval;
  hsync::hub::RosterStore store(options);
  std::vector<User> roster;
  for (int i = 0; i < users; ++i) roster.push_back(MakeUser(i));
  const absl::Time t0 = absl::FromUnixSeconds(1'750'000'000);
  if (!store.ReplaceAll(roster, t0).ok()) std::abort();
  std::mt19937 rng(13);
  // Second of the minute at which each user's PATCH answer comes.
  std::vector<int> offset(users);
  for (int& o : offset) o = static_cast<int>(rng() % 60);
  uint64_t sent_version = store.version();
  uint64_t bytes = 0, messages = 0;
  auto drain = [&] {
    while (auto next = store.NextUpdate(sent_version)) {
      if (next->full) std::abort();  // the history must reach back
      bytes += next->message.total_size;
      ++messages;
      if (std::getenv("BENCH_DEBUG") != nullptr) {
        hiddify_sync::v1::RosterUpdate update;
        update.ParseFromString(next->message.Flatten());
        std::printf("  v%llu %zu bytes, %d upserts, %d usage\n",
                    static_cast<unsigned long long>(next->version), next->message.total_size,
                    update.upserts_size(), update.usage_updates_size());
      }
      sent_version = next->version;
    }
  };
  for (int second = 1; second <= minutes * 60; ++second) {
    const absl::Time now = t0 + absl::Seconds(second);
    for (int i = 0; i < users; ++i) {
      if (offset[i] != second % 60) continue;
      User& u = roster[i];
      u.set_current_usage_bytes(u.current_usage_bytes() + 50'000'000 + rng() % 1000);
      u.set_last_online(absl::FormatTime("%Y-%m-%d %H:%M:%S", now, absl::UTCTimeZone()));
      if (second % 60 == 0 && i % 1000 == 0) u.set_is_active(!u.is_active());
      store.Upsert(u, now);
    }
    if (second % 30 == 0) {
      auto read = store.BeginReplace(now - absl::Seconds(1));
      for (const User& u : roster) read->Add(u);
      if (!read->Commit({}, now).ok()) std::abort();
    }
    store.FlushDueUsage(now);
    drain();
  }
  return Result{static_cast<double>(bytes) / minutes, static_cast<double>(messages) / minutes};
}

}  // namespace

int main(int argc, char** argv) {
  int users = 10000, children = 50, minutes = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int n = std::atoi(argv[i + 1]);
    if (flag == "--users") users = n;
    if (flag == "--children") children = n;
    if (flag == "--minutes") minutes = n;
  }
  std::printf("hub_roster_bytes_bench: %d active users (one PATCH answer each per minute), %d children,"
              " %d simulated minutes\n", users, children, minutes);
  const Result before = Run(users, minutes, absl::ZeroDuration());
  std::printf("RESULT every change at once (before issue 13): %.1f MB/min to %d children (%.2f MB/min"
              " each), %.0f messages/min each\n",
              before.bytes_per_minute_per_child * children / 1e6, children,
              before.bytes_per_minute_per_child / 1e6, before.messages_per_minute);
  for (int seconds : {60, 120, 300}) {
    const Result after = Run(users, minutes, absl::Seconds(seconds));
    std::printf("RESULT usage coalesced every %d s: %.2f MB/min to %d children (%.3f MB/min each),"
                " %.0f messages/min each: %.1fx less\n",
                seconds, after.bytes_per_minute_per_child * children / 1e6, children,
                after.bytes_per_minute_per_child / 1e6, after.messages_per_minute,
                before.bytes_per_minute_per_child / after.bytes_per_minute_per_child);
  }
  return 0;
}
