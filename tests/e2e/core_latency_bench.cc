// e2e_core_latency_bench: how fast the proxy cores of every child follow the
// parent (issue 11), on the whole system (panelsim parent, the hub, N
// children each a panelsim with its cores + the real reporter), traffic on.
// Prints, p50 / p99 / max over the changes made:
//   - block on the parent -> gone from xray on every child, and from sing-box
//     (an apply run) on every child;
//   - unblock / create on the parent -> in xray on every child, in sing-box;
//   - quota crossing (the user's bytes generated on the children pass its
//     limit) -> inactive on the parent -> gone from xray on every child, and
//     the bytes carried past the quota (parent usage - limit, once drained);
//   - apply runs (each drops every sing-box connection) per change and per
//     hour of a steady stream of changes, and runs refused busy.
//   e2e_core_latency_bench [--children 3] [--changes 30] [--quota-users 5]
//                          [--roster-poll 1s] [--seed N]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "tests/e2e/bench_support.h"
#include "tests/e2e/system_under_test.h"

namespace hsync::testing {
void StopSharedMariaDb();  // tests/support/test_mariadb.cc
}  // namespace hsync::testing

namespace hsync::e2e {
namespace {

using json = nlohmann::json;

struct Config {
  int children = 3;
  int changes = 30;
  int quota_users = 5;
  std::string roster_poll = "1s";
  uint64_t seed = 0;
};

absl::StatusOr<json> GetJson(hsync::testing::PanelsimRunner& panel, const std::string& path) {
  ASSIGN_OR_RETURN(auto response, panel.Control("GET", path));
  if (response.status != 200) return absl::InternalError(absl::StrCat("GET ", path, " -> ", response.status));
  json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded()) return absl::InternalError(absl::StrCat("GET ", path, ": not JSON"));
  return body;
}

bool InCore(const json& cores, const char* core, const std::string& uuid) {
  if (!cores.contains(core)) return false;
  for (const json& m : cores[core]) {
    if (m.is_string() && absl::AsciiStrToLower(m.get<std::string>()) == uuid) return true;
  }
  return false;
}

// Per core: true when `uuid`'s membership on every child is `want`.
struct Follow {
  bool xray = false;
  bool singbox = false;
};
absl::StatusOr<Follow> EveryChild(SystemUnderTest& sut, const std::string& uuid, bool want) {
  Follow f{true, true};
  for (int i = 0; i < sut.child_count(); ++i) {
    ASSIGN_OR_RETURN(json cores, GetJson(sut.child(i).panel(), "/_sim/cores"));
    f.xray = f.xray && InCore(cores, "xray", uuid) == want;
    f.singbox = f.singbox && InCore(cores, "singbox", uuid) == want;
  }
  return f;
}

struct Latencies {
  std::vector<double> xray, singbox;
};

// Polls every 10 ms until both cores follow (30 s at most); records each.
absl::Status Measure(SystemUnderTest& sut, const std::string& uuid, bool want, absl::Time t0,
                     Latencies& out) {
  bool xray_done = false, singbox_done = false;
  while (absl::Now() - t0 < absl::Seconds(30)) {
    ASSIGN_OR_RETURN(Follow f, EveryChild(sut, uuid, want));
    const double s = absl::ToDoubleSeconds(absl::Now() - t0);
    if (f.xray && !xray_done) out.xray.push_back(s), xray_done = true;
    if (f.singbox && !singbox_done) out.singbox.push_back(s), singbox_done = true;
    if (xray_done && singbox_done) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat(uuid, ": cores did not follow within 30 s"));
}

absl::Status Patch(SystemUnderTest& sut, const std::string& uuid, const std::string& body) {
  ASSIGN_OR_RETURN(auto r, sut.parent().Api("PATCH", absl::StrCat("admin/user/", uuid, "/"), body));
  if (r.status != 200) return absl::InternalError(absl::StrCat("PATCH ", uuid, " -> ", r.status));
  return absl::OkStatus();
}

std::string Row(const char* what, std::vector<double> v) {
  if (v.empty()) return absl::StrCat("| ", what, " | - | - | - | 0 |");
  const double mx = *std::max_element(v.begin(), v.end());
  return absl::StrFormat("| %s | %.2f | %.2f | %.2f | %zu |", what, Percentile(v, 50),
                         Percentile(v, 99), mx, v.size());
}

struct Counters {
  uint64_t apply_runs = 0, apply_busy = 0, singbox_restarts = 0;
};
absl::StatusOr<Counters> ChildCounters(SystemUnderTest& sut) {
  Counters c;
  for (int i = 0; i < sut.child_count(); ++i) {
    ASSIGN_OR_RETURN(json body, GetJson(sut.child(i).panel(), "/_sim/counters"));
    c.apply_runs += body.value("apply_runs", uint64_t{0});
    c.apply_busy += body.value("apply_busy", uint64_t{0});
    c.singbox_restarts += body.value("singbox_restarts", uint64_t{0});
  }
  return c;
}

absl::Status Run(const Config& config) {
  SystemOptions options;
  options.children = config.children;
  options.parent_users = 40;
  options.roster_poll_interval = config.roster_poll;
  options.seed = config.seed != 0 ? config.seed : E2eSeed();
  std::printf("e2e_core_latency_bench: %d children, %d changes, %d quota users, roster poll %s, "
              "seed %llu\n",
              config.children, config.changes, config.quota_users, config.roster_poll.c_str(),
              static_cast<unsigned long long>(options.seed));
  ASSIGN_OR_RETURN(auto sut, SystemUnderTest::Start(options));
  RETURN_IF_ERROR(sut->SetTraffic(true));
  std::mt19937_64 rng(options.seed);

  Latencies block, unblock, create;
  ASSIGN_OR_RETURN(const Counters before, ChildCounters(*sut));
  const absl::Time changes_start = absl::Now();
  int created = 0;
  for (int n = 0; n < config.changes; ++n) {
    ASSIGN_OR_RETURN(json users, sut->ParentUsers());
    std::vector<std::string> active, blocked;
    for (const json& u : users) {
      const std::string uuid = absl::AsciiStrToLower(u.value("uuid", ""));
      if (u.value("is_active", false)) active.push_back(uuid);
      if (!u.value("enable", true)) blocked.push_back(uuid);
    }
    const int op = n % 3;
    const absl::Time t0 = absl::Now();
    if (op == 0 && !active.empty()) {
      const std::string uuid = active[rng() % active.size()];
      RETURN_IF_ERROR(Patch(*sut, uuid, "{\"enable\":false}"));
      RETURN_IF_ERROR(Measure(*sut, uuid, false, t0, block));
    } else if (op == 1 && !blocked.empty()) {
      const std::string uuid = blocked[rng() % blocked.size()];
      RETURN_IF_ERROR(Patch(*sut, uuid, "{\"enable\":true}"));
      // Only a user the unblock makes active can be in the cores.
      ASSIGN_OR_RETURN(json again, sut->ParentUsers());
      bool now_active = false;
      for (const json& u : again) {
        if (absl::AsciiStrToLower(u.value("uuid", "")) == uuid) now_active = u.value("is_active", false);
      }
      if (now_active) RETURN_IF_ERROR(Measure(*sut, uuid, true, t0, unblock));
    } else {
      const std::string body = absl::StrCat("{\"name\":\"bench-created-", ++created,
                                            "\",\"usage_limit_GB\":50,\"package_days\":30,"
                                            "\"mode\":\"no_reset\"}");
      ASSIGN_OR_RETURN(auto r, sut->parent().Api("POST", "admin/user/", body));
      if (r.status != 200) return absl::InternalError(absl::StrCat("POST user -> ", r.status));
      json made = json::parse(r.body, nullptr, false);
      const std::string uuid = absl::AsciiStrToLower(made.is_object() ? made.value("uuid", "") : "");
      if (uuid.empty()) return absl::InternalError("POST user: no uuid in the answer");
      RETURN_IF_ERROR(Measure(*sut, uuid, true, t0, create));
    }
    // A steady stream of changes: one every ~2 s.
    absl::SleepFor(absl::Milliseconds(1000 + rng() % 2000));
  }
  const absl::Duration changes_took = absl::Now() - changes_start;
  ASSIGN_OR_RETURN(const Counters after, ChildCounters(*sut));

  // Quota crossings. For each user: traffic paused and drained (so the
  // parent holds every byte carried so far), a limit kMargin above its usage,
  // traffic on again; the crossing is the moment the bytes generated for the
  // user on the children since then pass kMargin.
  std::vector<double> to_inactive, to_cut, past_quota_mb;
  constexpr uint64_t kMargin = 200'000'000;
  std::set<std::string> used_for_quota;
  for (int q = 0; q < config.quota_users; ++q) {
    RETURN_IF_ERROR(sut->StopTrafficAndDrain(absl::Seconds(120)));
    ASSIGN_OR_RETURN(json users, sut->ParentUsers());
    std::vector<std::string> candidates;
    for (const json& u : users) {
      const std::string uuid = absl::AsciiStrToLower(u.value("uuid", ""));
      if (u.value("is_active", false) && !used_for_quota.contains(uuid)) candidates.push_back(uuid);
    }
    if (candidates.empty()) break;
    const std::string uuid = candidates[rng() % candidates.size()];
    used_for_quota.insert(uuid);
    ASSIGN_OR_RETURN(auto usage_now, ReadParentUsage(sut->parent().options().database));
    const uint64_t limit = usage_now[uuid] + kMargin;
    RETURN_IF_ERROR(Patch(*sut, uuid,
                          absl::StrFormat("{\"usage_limit_GB\":%.9f}",
                                          static_cast<double>(limit) / (1ull << 30))));
    ASSIGN_OR_RETURN(json fresh, sut->ParentUsers());
    uint64_t stored_limit = limit;
    for (const json& u : fresh) {
      if (absl::AsciiStrToLower(u.value("uuid", "")) != uuid) continue;
      stored_limit = static_cast<uint64_t>(u.value("usage_limit_GB", 0.0) * (1ull << 30));
    }
    uint64_t generated_at_set = 0;
    for (int i = 0; i < sut->child_count(); ++i) {
      ASSIGN_OR_RETURN(json t, GetJson(sut->child(i).panel(), "/_sim/traffic"));
      generated_at_set += t["per_user"].value(uuid, uint64_t{0});
    }
    const uint64_t margin = stored_limit - usage_now[uuid];
    RETURN_IF_ERROR(sut->SetTraffic(true));
    const absl::Time deadline = absl::Now() + absl::Seconds(180);
    std::optional<absl::Time> crossed, inactive;
    while (absl::Now() < deadline) {
      uint64_t generated = 0;
      for (int i = 0; i < sut->child_count(); ++i) {
        ASSIGN_OR_RETURN(json t, GetJson(sut->child(i).panel(), "/_sim/traffic"));
        generated += t["per_user"].value(uuid, uint64_t{0});
      }
      if (!crossed && generated - generated_at_set >= margin) crossed = absl::Now();
      if (crossed && !inactive) {
        ASSIGN_OR_RETURN(json now_users, sut->ParentUsers());
        for (const json& u : now_users) {
          if (absl::AsciiStrToLower(u.value("uuid", "")) == uuid && !u.value("is_active", true)) {
            inactive = absl::Now();
          }
        }
      }
      if (crossed && inactive) {
        ASSIGN_OR_RETURN(Follow f, EveryChild(*sut, uuid, false));
        if (f.xray) {
          to_inactive.push_back(absl::ToDoubleSeconds(*inactive - *crossed));
          to_cut.push_back(absl::ToDoubleSeconds(absl::Now() - *crossed));
          break;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (!crossed || !inactive) {
      std::printf("quota user %s: %s within 180 s\n", uuid.c_str(),
                  crossed ? "not cut" : "did not reach its quota");
      continue;
    }
    // What it carried past the quota, on every path, until every core cut it
    // (sing-box and WireGuard at the next apply run).
    for (absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until;) {
      ASSIGN_OR_RETURN(Follow f, EveryChild(*sut, uuid, false));
      if (f.singbox) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    RETURN_IF_ERROR(sut->StopTrafficAndDrain(absl::Seconds(120)));
    ASSIGN_OR_RETURN(auto usage_after, ReadParentUsage(sut->parent().options().database));
    const uint64_t used = usage_after[uuid];
    past_quota_mb.push_back(used > stored_limit ? static_cast<double>(used - stored_limit) / 1e6 : 0.0);
  }

  std::printf("\n| from the parent's change to ... on every child (s) | p50 | p99 | max | n |\n"
              "|---|---|---|---|---|\n");
  std::printf("%s\n", Row("block -> gone from xray", block.xray).c_str());
  std::printf("%s\n", Row("block -> gone from sing-box", block.singbox).c_str());
  std::printf("%s\n", Row("unblock -> in xray", unblock.xray).c_str());
  std::printf("%s\n", Row("unblock -> in sing-box", unblock.singbox).c_str());
  std::printf("%s\n", Row("create -> in xray", create.xray).c_str());
  std::printf("%s\n", Row("create -> in sing-box", create.singbox).c_str());
  std::printf("%s\n", Row("quota crossed -> inactive on the parent", to_inactive).c_str());
  std::printf("%s\n", Row("quota crossed -> gone from xray", to_cut).c_str());
  std::printf("%s\n", Row("bytes carried past the quota (MB)", past_quota_mb).c_str());
  const double hours = absl::ToDoubleSeconds(changes_took) / 3600;
  const uint64_t runs = after.apply_runs - before.apply_runs;
  std::printf("\napply runs (sing-box restarts) on %d children during %d changes in %.0f s: %llu "
              "(%.2f per change per child, %.0f per child per hour at this rate), %llu refused "
              "busy\n",
              config.children, config.changes, absl::ToDoubleSeconds(changes_took),
              static_cast<unsigned long long>(runs),
              static_cast<double>(runs) / config.children / std::max(1, config.changes),
              static_cast<double>(runs) / config.children / std::max(hours, 1e-9),
              static_cast<unsigned long long>(after.apply_busy - before.apply_busy));
  return absl::OkStatus();
}

}  // namespace
}  // namespace hsync::e2e

int main(int argc, char** argv) {
  hsync::e2e::Config config;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* v = argv[i + 1];
    bool ok = true;
    if (flag == "--children") ok = absl::SimpleAtoi(v, &config.children);
    else if (flag == "--changes") ok = absl::SimpleAtoi(v, &config.changes);
    else if (flag == "--quota-users") ok = absl::SimpleAtoi(v, &config.quota_users);
    else if (flag == "--roster-poll") config.roster_poll = v;
    else if (flag == "--seed") ok = absl::SimpleAtoi(v, &config.seed);
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "usage: e2e_core_latency_bench [--children N] [--changes N] "
                           "[--quota-users N] [--roster-poll DURATION] [--seed N]\n");
      return 2;
    }
  }
  absl::Status status = hsync::e2e::Run(config);
  hsync::testing::StopSharedMariaDb();
  if (!status.ok()) {
    std::fprintf(stderr, "e2e_core_latency_bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
