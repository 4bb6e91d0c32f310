#include "tests/e2e/fault_trials.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace hsync::e2e {
namespace {

struct KindName {
  FaultKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {FaultKind::kHubKill, "hub_kill"},
    {FaultKind::kReporterKill, "reporter_kill"},
    {FaultKind::kHubAndReporterKill, "hub_and_reporter_kill"},
    {FaultKind::kDelayedRestart, "delayed_restart"},
    {FaultKind::kParentFaults, "parent_faults"},
    {FaultKind::kNetworkCut, "network_cut"},
    {FaultKind::kMariaDbRestart, "mariadb_restart"},
    {FaultKind::kChildReset, "child_reset"},
    {FaultKind::kRmwRace, "rmw_race"},
    {FaultKind::kChildPanelFaults, "child_panel_faults"},
    {FaultKind::kApplyBusy, "apply_busy"},
};

// Retries a call to a panelsim's API for a while: during a MariaDB restart
// the panel answers 500, and the test's own changes must still happen.
template <typename F>
absl::Status Retrying(F&& call) {
  absl::Status last;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    last = call();
    if (last.ok()) return last;
    absl::SleepFor(absl::Milliseconds(250));
  } while (absl::Now() < deadline);
  return last;
}

}  // namespace

const std::vector<FaultKind>& AllFaultKinds() {
  static const std::vector<FaultKind> kinds = [] {
    std::vector<FaultKind> all;
    for (const KindName& k : kKinds) all.push_back(k.kind);
    return all;
  }();
  return kinds;
}

std::string FaultKindName(FaultKind kind) {
  for (const KindName& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

std::string TrialTotals::Summary() const {
  std::vector<std::string> parts;
  int total = 0;
  for (const auto& [kind, n] : trials) {
    parts.push_back(absl::StrCat(kind, "=", n));
    total += n;
  }
  return absl::StrCat("trials ", total, " (", absl::StrJoin(parts, " "), "), failures ", failures,
                      ", bytes checked ", bytes_checked, ", cores and is_active agreed within ",
                      absl::FormatDuration(absl::Trunc(cores_follow_max, absl::Milliseconds(100))),
                      " of the rosters");
}

FaultTrials::FaultTrials(SystemUnderTest* sut, uint64_t seed, TrialOptions options)
    : sut_(sut), rng_(seed), options_(options) {}

absl::Duration FaultTrials::Between(absl::Duration lo, absl::Duration hi) {
  if (hi <= lo) return lo;
  std::uniform_int_distribution<int64_t> ms(absl::ToInt64Milliseconds(lo),
                                            absl::ToInt64Milliseconds(hi));
  return absl::Milliseconds(ms(rng_));
}

int FaultTrials::Child() {
  return static_cast<int>(rng_() % static_cast<uint64_t>(sut_->child_count()));
}

std::vector<int> FaultTrials::SomeChildren() {
  std::vector<int> children;
  if (rng_() % 10 < 3) {
    for (int i = 0; i < sut_->child_count(); ++i) children.push_back(i);
  } else {
    children.push_back(Child());
  }
  return children;
}

void FaultTrials::Log(const std::string& line) {
  if (!options_.verbose) return;
  std::printf("[e2e +%5.1fs] %s\n", absl::ToDoubleSeconds(absl::Now() - trial_start_), line.c_str());
  std::fflush(stdout);
}

absl::Status FaultTrials::Run(FaultKind kind) {
  trial_start_ = absl::Now();
  const std::string name = FaultKindName(kind);
  Log(absl::StrCat("trial ", name, ": start"));
  ASSIGN_OR_RETURN(const UsageSnapshot baseline, sut_->Snapshot());
  RETURN_IF_ERROR(sut_->SetTraffic(true));

  const absl::Duration traffic = Between(options_.min_traffic, options_.max_traffic);
  const absl::Duration fault_at = Between(absl::Milliseconds(500), traffic * 0.6);
  const absl::Duration roster_at = Between(absl::Milliseconds(200), traffic);
  bool roster_done = false;
  auto roster_change = [&]() -> absl::Status {
    roster_done = true;
    return RosterChange();
  };
  if (roster_at < fault_at) {
    absl::SleepFor(roster_at);
    RETURN_IF_ERROR(roster_change());
  }
  absl::SleepFor(fault_at - (absl::Now() - trial_start_));
  if (kind == FaultKind::kChildReset) {
    RETURN_IF_ERROR(ChildResets(traffic - fault_at));
  } else {
    RETURN_IF_ERROR(Inject(kind));
  }
  if (!roster_done) {
    const absl::Duration left = roster_at - (absl::Now() - trial_start_);
    if (left > absl::ZeroDuration()) absl::SleepFor(left);
    RETURN_IF_ERROR(roster_change());
  }
  const absl::Duration rest = traffic - (absl::Now() - trial_start_);
  if (rest > absl::ZeroDuration()) absl::SleepFor(rest);

  Log("pausing traffic, waiting until everything reached the parent");
  const absl::Time drain_start = absl::Now();
  if (absl::Status drained = sut_->StopTrafficAndDrain(options_.drain_timeout); !drained.ok()) {
    ++totals_.failures;
    return absl::Status(drained.code(), absl::StrCat(name, ": ", drained.message(), "\n",
                                                     sut_->Diagnostics()));
  }
  const absl::Duration drain_took = absl::Now() - drain_start;
  ASSIGN_OR_RETURN(const UsageComparison usage, sut_->CompareWithBaseline(baseline));
  if (!usage.exact()) {
    ++totals_.failures;
    return absl::DataLossError(absl::StrCat(name, ": usage invariant broken: ", usage.Summary(),
                                            "\n", sut_->Diagnostics()));
  }
  if (absl::Status roster = sut_->WaitRosterConverged(options_.roster_timeout); !roster.ok()) {
    ++totals_.failures;
    return absl::Status(roster.code(), absl::StrCat(name, ": ", roster.message()));
  }
  absl::StatusOr<absl::Duration> cores = sut_->WaitCoresFollow(options_.roster_timeout);
  if (!cores.ok()) {
    ++totals_.failures;
    return absl::Status(cores.status().code(), absl::StrCat(name, ": ", cores.status().message(),
                                                            sut_->Diagnostics()));
  }
  totals_.cores_follow_max = std::max(totals_.cores_follow_max, *cores);
  ++totals_.trials[name];
  totals_.bytes_checked += usage.generated_bytes;
  Log(absl::StrCat("trial ", name, ": OK: ", usage.users, " users, ", usage.generated_bytes,
                   " bytes generated = parent increase",
                   usage.wiped_bytes > 0
                       ? absl::StrCat(" (not counting ", usage.wiped_bytes,
                                      " B the children's resets zeroed before a collect)")
                       : "",
                   "; drained in ",
                   absl::FormatDuration(absl::Trunc(drain_took, absl::Milliseconds(100))),
                   "; rosters equal; every child's cores and is_active agree with the "
                   "parent (after ",
                   absl::FormatDuration(absl::Trunc(*cores, absl::Milliseconds(100))), ")"));
  return absl::OkStatus();
}

absl::Status FaultTrials::Inject(FaultKind kind) {
  switch (kind) {
    case FaultKind::kHubKill:
      return KillAndRestart(true, {}, absl::Seconds(3));
    case FaultKind::kReporterKill:
      return KillAndRestart(false, {Child()}, absl::Seconds(3));
    case FaultKind::kHubAndReporterKill:
      return KillAndRestart(true, {Child()}, absl::Seconds(3));
    case FaultKind::kDelayedRestart: {
      bool hub = rng_() % 2 == 0;
      std::vector<int> reporters;
      for (int i = 0; i < sut_->child_count(); ++i) {
        if (rng_() % 2 == 0) reporters.push_back(i);
      }
      if (!hub && reporters.empty()) hub = true;
      return KillAndRestart(hub, reporters, absl::Seconds(12));
    }
    case FaultKind::kParentFaults:
      return ParentFaults();
    case FaultKind::kNetworkCut:
      return NetworkCut();
    case FaultKind::kMariaDbRestart: {
      const bool hard = rng_() % 2 == 0;
      const absl::Duration down = Between(absl::ZeroDuration(), absl::Seconds(3));
      Log(absl::StrCat("MariaDB: ", hard ? "SIGKILL" : "clean shutdown", ", down for ",
                       absl::FormatDuration(down)));
      RETURN_IF_ERROR(sut_->RestartMariaDb(hard, down));
      Log("MariaDB: running again");
      return absl::OkStatus();
    }
    case FaultKind::kChildPanelFaults:
      return ChildPanelFaults();
    case FaultKind::kApplyBusy:
      return ApplyBusy();
    case FaultKind::kChildReset:
    case FaultKind::kRmwRace:
      return absl::OkStatus();  // kRmwRace: the race runs all the time; nothing else
  }
  return absl::OkStatus();
}

absl::Status FaultTrials::KillAndRestart(bool hub, const std::vector<int>& reporters,
                                         absl::Duration max_delay) {
  // (restart at, -1 = hub / child index)
  std::vector<std::pair<absl::Duration, int>> restarts;
  if (hub) {
    sut_->KillHub();
    restarts.emplace_back(Between(absl::ZeroDuration(), max_delay), -1);
  }
  for (int i : reporters) {
    sut_->KillReporter(i);
    restarts.emplace_back(Between(absl::ZeroDuration(), max_delay), i);
  }
  std::vector<std::string> killed;
  for (const auto& [delay, who] : restarts) {
    killed.push_back(absl::StrCat(who < 0 ? "hub" : sut_->child(who).node_id(), " (back after ",
                                  absl::FormatDuration(delay), ")"));
  }
  Log(absl::StrCat("SIGKILL ", absl::StrJoin(killed, ", ")));
  std::sort(restarts.begin(), restarts.end());
  const absl::Time killed_at = absl::Now();
  for (const auto& [delay, who] : restarts) {
    const absl::Duration wait = delay - (absl::Now() - killed_at);
    if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
    if (who < 0) {
      RETURN_IF_ERROR(sut_->RestartHub());
    } else {
      RETURN_IF_ERROR(sut_->StartReporter(who));
    }
  }
  Log("every killed process restarted");
  return absl::OkStatus();
}

absl::Status FaultTrials::ParentFaults() {
  static const char* kRoutes[] = {"*", "get_user", "patch_user", "list_users"};
  auto route = [&] { return std::string(kRoutes[rng_() % 4]); };
  auto rate = [&] { return 0.3 + 0.7 * static_cast<double>(rng_() % 1000) / 1000.0; };
  std::vector<std::string> rules;
  // One rule the parent answers (5xx, a slow or late answer, garbage).
  switch (rng_() % 4) {
    case 0: {
      static const int kStatus[] = {500, 502, 503};
      rules.push_back(absl::StrCat("{\"route\":\"", route(), "\",\"error_rate\":", rate(),
                                   ",\"error_status\":", kStatus[rng_() % 3], "}"));
      break;
    }
    case 1:
      rules.push_back(absl::StrCat("{\"route\":\"", route(), "\",\"latency_ms\":",
                                   200 + rng_() % 1300, "}"));
      break;
    case 2:  // processed, then answered after the hub gave up waiting (3 s)
      rules.push_back(absl::StrCat("{\"route\":\"patch_user\",\"after_latency_ms\":",
                                   3500 + rng_() % 1000, ",\"remaining\":", 1 + rng_() % 3, "}"));
      break;
    default:
      rules.push_back(absl::StrCat("{\"route\":\"", route(), "\",\"garbage_rate\":", rate(), "}"));
      break;
  }
  // One rule it does not answer (the hub cannot know whether a PATCH landed).
  if (options_.slow_parent_faults) {
    rules.push_back(absl::StrCat("{\"route\":\"", route(), "\",\"",
                                 rng_() % 2 == 0 ? "timeout_rate" : "drop_rate", "\":", rate(),
                                 "}"));
  }
  const absl::Duration duration = Between(absl::Seconds(2), absl::Seconds(5));
  for (const std::string& rule : rules) {
    ASSIGN_OR_RETURN(auto response, sut_->parent().Control("POST", "/_sim/faults", rule));
    if (response.status != 200) {
      return absl::InternalError(absl::StrCat("POST /_sim/faults ", rule, " -> ", response.status,
                                              " ", response.body));
    }
  }
  Log(absl::StrCat("parent faults for ", absl::FormatDuration(duration), ": ",
                   absl::StrJoin(rules, " ")));
  absl::SleepFor(duration);
  ASSIGN_OR_RETURN(auto cleared, sut_->parent().Control("DELETE", "/_sim/faults"));
  if (cleared.status != 200) return absl::InternalError("DELETE /_sim/faults failed");
  Log("parent faults cleared");
  return absl::OkStatus();
}

absl::Status FaultTrials::ChildPanelFaults() {
  const std::vector<int> faulty = SomeChildren();
  // Down (every connection dropped) or failing (every request answered 500).
  const std::string rule = rng_() % 2 == 0
                               ? "{\"route\":\"*\",\"drop_rate\":1.0}"
                               : "{\"route\":\"*\",\"error_rate\":1.0,\"error_status\":500}";
  const absl::Duration duration = Between(absl::Seconds(2), absl::Seconds(6));
  std::vector<std::string> names;
  for (int i : faulty) {
    ASSIGN_OR_RETURN(auto response, sut_->child(i).panel().Control("POST", "/_sim/faults", rule));
    if (response.status != 200) {
      return absl::InternalError(absl::StrCat("POST /_sim/faults on ", sut_->child(i).node_id(),
                                              " -> ", response.status, " ", response.body));
    }
    names.push_back(sut_->child(i).node_id());
  }
  Log(absl::StrCat("child panel API of ", absl::StrJoin(names, ", "), " ", rule, " for ",
                   absl::FormatDuration(duration)));
  const absl::Time end = absl::Now() + duration;
  // Changes the children's cores must follow, while the panel cannot take them.
  for (int n = 0; n < 2; ++n) {
    absl::SleepFor(Between(absl::Milliseconds(100), duration / 3));
    RETURN_IF_ERROR(CoreRelevantRosterChange());
  }
  if (absl::Now() < end) absl::SleepFor(end - absl::Now());
  for (int i : faulty) {
    ASSIGN_OR_RETURN(auto cleared, sut_->child(i).panel().Control("DELETE", "/_sim/faults"));
    if (cleared.status != 200) return absl::InternalError("DELETE /_sim/faults failed");
  }
  Log("child panel API back");
  return absl::OkStatus();
}

absl::Status FaultTrials::ApplyBusy() {
  const int c = Child();
  hsync::testing::PanelsimRunner& panel = sut_->child(c).panel();
  const int rounds = 1 + static_cast<int>(rng_() % 3);
  for (int n = 0; n < rounds; ++n) {
    // Someone else's run (an admin, the panel's own quick apply) holds the
    // lock; the change lands after it read the database, so only a run of
    // the reporter's after it can render the change into sing-box/WireGuard.
    absl::StatusOr<hsync::testing::HttpResponse> run;
    std::thread other([&] { run = panel.Control("POST", "/_sim/apply_users", "{}"); });
    absl::SleepFor(absl::Milliseconds(50));
    absl::Status changed = CoreRelevantRosterChange();
    other.join();
    RETURN_IF_ERROR(changed);
    if (!run.ok()) return run.status();
    if (run->status != 200) {
      return absl::InternalError(absl::StrCat("POST /_sim/apply_users -> ", run->status));
    }
    Log(absl::StrCat("apply run by someone else on ", sut_->child(c).node_id(), " (", run->body,
                     ") around a change on the parent"));
    absl::SleepFor(Between(absl::Milliseconds(100), absl::Seconds(1)));
  }
  return absl::OkStatus();
}

absl::Status FaultTrials::NetworkCut() {
  const std::vector<int> cut = SomeChildren();
  const bool refuse = rng_() % 2 == 0;
  const absl::Duration duration = Between(absl::Seconds(1), absl::Seconds(8));
  std::vector<std::string> names;
  for (int i : cut) {
    sut_->child(i).proxy().Cut(refuse ? TcpProxy::CutMode::kRefuse : TcpProxy::CutMode::kBlackHole);
    names.push_back(sut_->child(i).node_id());
  }
  Log(absl::StrCat("network cut (", refuse ? "refused" : "black-holed", ") between the hub and ",
                   absl::StrJoin(names, ", "), " for ", absl::FormatDuration(duration)));
  absl::SleepFor(duration);
  for (int i : cut) sut_->child(i).proxy().Restore();
  Log("network restored");
  return absl::OkStatus();
}

absl::Status FaultTrials::ChildResets(absl::Duration window) {
  const int resets = 2 + static_cast<int>(rng_() % 4);
  const absl::Time end = absl::Now() + window;
  std::set<std::pair<int, std::string>> done;  // one reset per (child, user) per trial
  for (int n = 0; n < resets; ++n) {
    const absl::Duration left = end - absl::Now();
    absl::SleepFor(Between(absl::Milliseconds(100), std::max(left / (resets - n), absl::Milliseconds(100))));
    const int c = Child();
    ASSIGN_OR_RETURN(std::vector<std::string> users, sut_->UsersWithUsage(c));
    std::erase_if(users, [&](const std::string& u) { return done.contains({c, u}); });
    if (users.empty()) continue;
    const std::string uuid = users[rng_() % users.size()];
    done.insert({c, uuid});
    // Half of the time the reports are held in flight: the path to the hub
    // is black-holed around the reset.
    const bool hold = rng_() % 2 == 0;
    if (hold) sut_->child(c).proxy().Cut(TcpProxy::CutMode::kBlackHole);
    const absl::Duration before = hold ? Between(absl::Milliseconds(200), absl::Seconds(2))
                                       : absl::ZeroDuration();
    absl::SleepFor(before);
    RETURN_IF_ERROR(sut_->ResetOnChild(c, uuid));
    Log(absl::StrCat("periodic reset of ", uuid, " on ", sut_->child(c).node_id(),
                     hold ? " while its reports are held in flight" : ""));
    if (hold) {
      absl::SleepFor(Between(absl::Milliseconds(200), absl::Seconds(2)));
      sut_->child(c).proxy().Restore();
    }
  }
  return absl::OkStatus();
}

absl::Status FaultTrials::CoreRelevantRosterChange() {
  return RosterChange(static_cast<int>(rng_() % 3));
}

absl::Status FaultTrials::RosterChange(int forced_op) {
  hsync::testing::PanelsimRunner& parent = sut_->parent();
  const uint64_t op = forced_op >= 0 ? static_cast<uint64_t>(forced_op) : rng_() % 4;
  if (op == 0) {
    const std::string name = absl::StrCat("e2e-created-", ++created_users_);
    const std::string body = absl::StrCat("{\"name\":\"", name,
                                          "\",\"usage_limit_GB\":50,\"package_days\":30,"
                                          "\"mode\":\"no_reset\",\"comment\":\"created by e2e\"}");
    RETURN_IF_ERROR(Retrying([&]() -> absl::Status {
      ASSIGN_OR_RETURN(auto r, parent.Api("POST", "admin/user/", body));
      return r.status == 200 ? absl::OkStatus()
                             : absl::UnavailableError(absl::StrCat("POST user -> ", r.status));
    }));
    Log(absl::StrCat("parent: created user ", name));
    return absl::OkStatus();
  }
  absl::StatusOr<nlohmann::json> users;
  RETURN_IF_ERROR(Retrying([&]() -> absl::Status {
    users = sut_->ParentUsers();
    return users.status();
  }));
  std::vector<const nlohmann::json*> candidates;
  for (const nlohmann::json& u : *users) {
    const bool enabled = u.value("enable", false);
    if ((op == 1 && u.value("is_active", false)) || (op == 2 && !enabled) || op == 3) {
      candidates.push_back(&u);
    }
  }
  if (candidates.empty()) {
    // Nobody to unblock: block; nobody to block: create (a forced change happens).
    return forced_op > 0 ? RosterChange(forced_op - 1) : absl::OkStatus();
  }
  const nlohmann::json& user = *candidates[rng_() % candidates.size()];
  const std::string uuid = user.value("uuid", "");
  std::string body;
  std::string what;
  if (op == 1) {
    body = "{\"enable\":false}";
    what = "blocked";
  } else if (op == 2) {
    body = "{\"enable\":true}";
    what = "unblocked";
  } else {
    body = absl::StrCat("{\"comment\":\"edited ", rng_() % 100000, "\",\"usage_limit_GB\":",
                        20 + rng_() % 480, ",\"package_days\":", 30 + rng_() % 300, "}");
    what = absl::StrCat("edited (", body, ")");
  }
  RETURN_IF_ERROR(Retrying([&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto r, parent.Api("PATCH", absl::StrCat("admin/user/", uuid, "/"), body));
    return r.status == 200 ? absl::OkStatus()
                           : absl::UnavailableError(absl::StrCat("PATCH user -> ", r.status));
  }));
  Log(absl::StrCat("parent: user ", uuid, " ", what));
  return absl::OkStatus();
}

}  // namespace hsync::e2e
