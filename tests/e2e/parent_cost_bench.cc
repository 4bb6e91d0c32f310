// e2e_parent_cost_bench: what keeping a parent in step costs the parent panel
// (issue 12 §3), for the hub in api mode, the hub in database mode and the
// old per-child tool (old_tool_client.h), at 1,000 and 10,000 active users
// and 10 and 50 children. The parent is a real panelsim with the request
// cost model set to PANEL.md's measured figures (serial requests; PATCH 30 ms
// at 1,000 users / 76 ms at 10,000, POST 30 / 46 ms, the list 0.8 ms / 0.53 ms
// per user, one user's GET 5 ms — PANEL.md has no figure for it); its serial
// clock `busy_ms` is the panel's time taken away from its admin UI and
// subscription pages. Children are SIMULATED: report streams that send what a
// reporter sends (tests/e2e/load_stream.h), each active user on two
// children, every `--interval-s`; for the old tool, one database per child
// (a copy of the parent's user table) that gains traffic every interval and
// one OldToolClient per child.
//
// Time is scaled by --scale k (default 2): every interval of the hub, the
// children and the old tool is divided by k, the panel's request costs too,
// and the hub's PATCH budget is multiplied by k; a run of S real seconds is
// k x S simulated seconds, and every figure is printed in simulated time
// (per simulated minute; lags and cut times in simulated seconds). The
// panel's fixed overhead per request (MariaDB, HTTP) is not scaled, so a
// scaled run slightly overstates the busy time.
//
// Printed per case: parent requests / min, panel busy s / min (and % of the
// panel's time), PATCHes / min, usage lag p50 / p99 (a watched user's report
// collected -> its bytes on the parent; "n/a" when fewer than half were seen
// in the run), and for users whose quota the traffic crosses: crossing ->
// inactive on the parent (its usage >= its limit there) and -> cut on every
// child (api/database: every child's roster stream showed it not active;
// old tool: enable = 0 in every child's database).
//   e2e_parent_cost_bench [--users 1000,10000] [--children 10,50]
//                         [--modes api,database,old] [--seconds 60] [--scale 2]
//                         [--interval-s 30] [--seed N]
//   e2e_parent_cost_bench --loss [--seconds 60] [--scale 2]: api mode on a
//     parent with traffic of its own (60 users, 3 children): bytes lost.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
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
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "common/mariadb.h"
#include "common/status_macros.h"
#include "tests/e2e/bench_support.h"
#include "tests/e2e/hub_runner.h"
#include "tests/e2e/invariants.h"
#include "tests/e2e/load_stream.h"
#include "tests/e2e/old_tool_client.h"
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

struct BenchConfig {
  std::vector<int> users = {1000, 10000};
  std::vector<int> children = {10, 50};
  std::vector<std::string> modes = {"api", "database", "old"};
  int seconds = 60;           // real seconds of measurement per case
  int scale = 2;
  int interval_s = 30;        // simulated report / old-tool cycle interval
  bool loss = false;  // only the api-mode loss run
  uint64_t seed = 1;
  uint64_t max_bytes = 20'000'000;  // per user per report (uniform 1..max)
  int watched_users = 5;
  int cut_users = 3;
};

// PANEL.md §1 figures for a panel with `users` users (interpolated between
// the two measured sizes), divided by the time scale.
std::vector<std::string> CostArgs(int users, int scale) {
  const bool big = users >= 5000;
  const double patch_ms = big ? 76 : 30, post_ms = big ? 46 : 30, get_ms = 5;
  const double list_us_per_user = big ? 530 : 800;
  auto scaled = [&](double v) { return absl::StrCat(static_cast<int64_t>(v / scale + 0.5)); };
  return {"--patch-cost-ms", scaled(patch_ms), "--post-cost-ms", scaled(post_ms),
          "--get-cost-ms", scaled(get_ms), "--list-cost-us-per-user", scaled(list_us_per_user)};
}

std::string Seconds(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d), "ms");
}

struct CaseResult {
  std::string mode;
  int users = 0;
  int children = 0;
  double requests_per_min = 0, busy_s_per_min = 0, patches_per_min = 0;
  std::string lag_p50 = "n/a", lag_p99 = "n/a";
  std::string to_inactive = "n/a", to_cut = "n/a";
  uint64_t sessions = 0;
  std::string note;
};

std::string Fmt(double seconds) { return absl::StrFormat("%.1f", seconds); }

// The worst (largest) of the per-user times, or "n/a (k of n)" when some
// never happened in the run.
std::string WorstOf(const std::vector<double>& values, size_t expected, double run_s) {
  if (values.size() < expected) {
    return absl::StrFormat(">%.0f (%zu/%zu)", run_s, values.size(), expected);
  }
  return Fmt(*std::max_element(values.begin(), values.end()));
}

class ParentDb {
 public:
  explicit ParentDb(std::string database) : database_(std::move(database)) {}
  absl::StatusOr<ResultSet> Query(const std::string& sql) {
    if (conn_ == nullptr) {
      ASSIGN_OR_RETURN(conn_, MariaDbConnection::Connect(SharedMariaDb().Options(database_)));
    }
    auto rows = conn_->Query(sql);
    if (!rows.ok()) conn_.reset();
    return rows;
  }
  absl::Status Execute(const std::string& sql) {
    if (conn_ == nullptr) {
      ASSIGN_OR_RETURN(conn_, MariaDbConnection::Connect(SharedMariaDb().Options(database_)));
    }
    return conn_->Execute(sql).status();
  }

 private:
  std::string database_;
  std::unique_ptr<MariaDbConnection> conn_;
};

std::string QuotedList(const std::vector<std::string>& uuids) {
  std::vector<std::string> quoted;
  for (const std::string& u : uuids) quoted.push_back(absl::StrCat("'", u, "'"));
  return absl::StrJoin(quoted, ",");
}

// Users whose usage on the parent reached their limit.
absl::StatusOr<std::set<std::string>> OverQuota(ParentDb& db, const std::vector<std::string>& users) {
  ASSIGN_OR_RETURN(ResultSet rows,
                   db.Query(absl::StrCat("SELECT uuid FROM user WHERE current_usage >= usage_limit "
                                         "AND uuid IN (", QuotedList(users), ")")));
  std::set<std::string> out;
  for (const auto& row : rows.rows) out.insert(row[0].value_or(""));
  return out;
}

absl::StatusOr<std::map<std::string, uint64_t>> UsageOf(ParentDb& db,
                                                        const std::vector<std::string>& users) {
  ASSIGN_OR_RETURN(ResultSet rows, db.Query(absl::StrCat("SELECT uuid, current_usage FROM user "
                                                         "WHERE uuid IN (", QuotedList(users), ")")));
  std::map<std::string, uint64_t> out;
  for (const auto& row : rows.rows) {
    uint64_t v = 0;
    if (absl::SimpleAtoi(row[1].value_or("0"), &v)) out[row[0].value_or("")] = v;
  }
  return out;
}

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double one = 0;
  in >> one;
  return one;
}

// Everything one case needs that does not depend on the mode.
struct Workload {
  std::vector<std::string> active;                 // all active users
  std::vector<std::vector<std::string>> per_child;  // users reported by each child
  std::vector<std::string> watched;                // lag: on child 0 only
  std::vector<std::string> cut;                    // quota crossing: on child 0 only
  std::map<std::string, uint64_t> base;            // parent usage at start
  std::map<std::string, uint64_t> cut_limit;       // the limit set for each cut user
};

absl::StatusOr<Workload> MakeWorkload(const BenchConfig& config, int users, int children,
                                      ParentDb& db, const std::string& database,
                                      std::mt19937_64& rng) {
  Workload w;
  ASSIGN_OR_RETURN(w.base, ReadParentUsage(database));
  for (const auto& [uuid, unused] : w.base) w.active.push_back(uuid);
  std::shuffle(w.active.begin(), w.active.end(), rng);
  if (w.active.size() > static_cast<size_t>(users)) w.active.resize(users);
  const size_t special = config.watched_users + config.cut_users;
  w.watched.assign(w.active.begin(), w.active.begin() + config.watched_users);
  w.cut.assign(w.active.begin() + config.watched_users, w.active.begin() + special);
  w.per_child.resize(children);
  // Each other user on two children (round robin), the special ones on child 0 only.
  for (size_t i = special; i < w.active.size(); ++i) {
    w.per_child[i % children].push_back(w.active[i]);
    w.per_child[(i + 1) % children].push_back(w.active[i]);
  }
  for (size_t i = 0; i < special; ++i) w.per_child[0].push_back(w.active[i]);
  // A cut user crosses its quota after about a third of the run: mean bytes
  // per report x reports in that time (at least one report).
  const double reports_to_cross =
      std::max(1.0, config.seconds * config.scale / 3.0 / config.interval_s);
  const uint64_t to_cross = static_cast<uint64_t>(reports_to_cross * config.max_bytes / 2);
  for (const std::string& uuid : w.cut) {
    w.cut_limit[uuid] = w.base[uuid] + to_cross;
    RETURN_IF_ERROR(db.Execute(absl::StrCat("UPDATE user SET usage_limit = ", w.cut_limit[uuid],
                                            ", enable = 1 WHERE uuid = '", uuid, "'")));
  }
  return w;
}

// Follows watched reports and quota crossings on the parent.
class Sampler {
 public:
  Sampler(ParentDb* db, const Workload* w) : db_(db), w_(w) {}

  // A report of child 0 was acknowledged (api/database) or its bytes were
  // put into child 0's database (old tool).
  void AddWatched(std::vector<WatchedReport> reports) {
    for (WatchedReport& r : reports) {
      if (w_->cut_limit.contains(r.uuid)) {
        // The crossing moment: the first report that takes the user over.
        if (!crossed_at_.contains(r.uuid) &&
            w_->base.at(r.uuid) + r.cumulative >= w_->cut_limit.at(r.uuid)) {
          crossed_at_[r.uuid] = r.collected_at;
        }
        continue;
      }
      pending_.push_back(std::move(r));
    }
  }
  void Poll() {
    const absl::Time now = absl::Now();
    if (!pending_.empty()) {
      auto usage = UsageOf(*db_, w_->watched);
      if (usage.ok()) {
        std::vector<WatchedReport> still;
        for (const WatchedReport& r : pending_) {
          if ((*usage)[r.uuid] >= w_->base.at(r.uuid) + r.cumulative) {
            lag_s_.push_back(absl::ToDoubleSeconds(now - r.collected_at));
          } else {
            still.push_back(r);
          }
        }
        pending_.swap(still);
        watched_total_ = lag_s_.size() + pending_.size();
      }
    }
    if (inactive_at_.size() < w_->cut.size()) {
      auto over = OverQuota(*db_, w_->cut);
      if (over.ok()) {
        for (const std::string& uuid : *over) inactive_at_.emplace(uuid, now);
      }
    }
  }
  std::vector<double>& lag_seconds() { return lag_s_; }
  size_t watched_total() const { return watched_total_; }
  const std::map<std::string, absl::Time>& crossed_at() const { return crossed_at_; }
  const std::map<std::string, absl::Time>& inactive_at() const { return inactive_at_; }

 private:
  ParentDb* db_;
  const Workload* w_;
  std::vector<WatchedReport> pending_;
  std::vector<double> lag_s_;
  size_t watched_total_ = 0;
  std::map<std::string, absl::Time> crossed_at_;
  std::map<std::string, absl::Time> inactive_at_;
};

// Fills the crossing figures (simulated seconds) from the sampler and the
// per-user cut times (the latest over every child).
void CrossingFigures(const Sampler& sampler, const std::map<std::string, absl::Time>& cut_at,
                     size_t expected, int scale, double run_sim_s, CaseResult& result) {
  std::vector<double> to_inactive, to_cut;
  for (const auto& [uuid, crossed] : sampler.crossed_at()) {
    if (auto it = sampler.inactive_at().find(uuid); it != sampler.inactive_at().end()) {
      to_inactive.push_back(std::max(0.0, absl::ToDoubleSeconds(it->second - crossed)) * scale);
    }
    if (auto it = cut_at.find(uuid); it != cut_at.end()) {
      to_cut.push_back(std::max(0.0, absl::ToDoubleSeconds(it->second - crossed)) * scale);
    }
  }
  result.to_inactive = WorstOf(to_inactive, expected, run_sim_s);
  result.to_cut = WorstOf(to_cut, expected, run_sim_s);
}

void LagFigures(Sampler& sampler, int scale, double run_sim_s, CaseResult& result) {
  std::vector<double> lag = sampler.lag_seconds();
  for (double& v : lag) v *= scale;
  const size_t total = sampler.watched_total();
  if (total == 0) return;
  if (lag.size() * 2 < total) {
    result.lag_p50 = absl::StrFormat(">%.0f (%zu/%zu seen)", run_sim_s, lag.size(), total);
    result.lag_p99 = result.lag_p50;
    return;
  }
  result.lag_p50 = Fmt(Percentile(lag, 50));
  result.lag_p99 = lag.size() < total ? absl::StrFormat(">%.0f (%zu/%zu seen)", run_sim_s,
                                                        lag.size(), total)
                                      : Fmt(Percentile(lag, 99));
}

void CallFigures(const ParentCalls& calls, double sim_minutes, int scale, CaseResult& result) {
  result.requests_per_min = static_cast<double>(calls.total()) / sim_minutes;
  result.patches_per_min = static_cast<double>(calls.patch_user) / sim_minutes;
  result.busy_s_per_min = static_cast<double>(calls.busy_ms) * scale / 1000.0 / sim_minutes;
  result.sessions = calls.sessions_created;
}

// The hub (api or database mode) with simulated children.
absl::StatusOr<CaseResult> RunHub(const BenchConfig& config, const std::string& mode, int users,
                                  int children, PanelsimRunner& parent, const std::string& database,
                                  std::mt19937_64& rng) {
  CaseResult result;
  result.mode = mode;
  result.users = users;
  result.children = children;
  ParentDb db(database);
  ASSIGN_OR_RETURN(Workload w, MakeWorkload(config, users, children, db, database, rng));
  const int k = config.scale;
  std::map<std::string, std::string> tokens;
  for (int i = 0; i < children; ++i) {
    tokens[absl::StrCat("child-", i)] = absl::StrFormat("cost-token-%d-%016x", i, rng());
  }
  HubRunnerOptions hub_options;
  hub_options.parent_url = parent.base_url();
  hub_options.parent_api_key = parent.api_key();
  hub_options.node_tokens = tokens;
  hub_options.apply_interval = Seconds(absl::Seconds(1) / k);
  hub_options.max_apply_delay = Seconds(absl::Seconds(60) / k);
  hub_options.roster_poll_interval = Seconds(absl::Seconds(30) / k);
  hub_options.urgent_horizon = Seconds(absl::Seconds(120) / k);
  hub_options.max_patches_per_minute = 120 * k;
  hub_options.parent_timeout = "60s";
  hub_options.log_level = "warning";
  if (mode == "database") {
    hub_options.parent_toml = absl::StrCat(
        "write = \"database\"\n\n[parent.database]\nsocket = \"", SharedMariaDb().socket_path(),
        "\"\nuser = \"root\"\ndatabase = \"", database, "\"\nhub_database = \"", database,
        "_hub\"\n");
  }
  ASSIGN_OR_RETURN(auto hub, HubRunner::Start(hub_options));
  std::set<std::string> watched(w.watched.begin(), w.watched.end());
  watched.insert(w.cut.begin(), w.cut.end());
  std::vector<std::unique_ptr<LoadStream>> streams;
  for (int i = 0; i < children; ++i) {
    LoadStreamOptions o;
    o.node_id = absl::StrCat("child-", i);
    o.token = tokens[o.node_id];
    o.target = hub->target();
    o.users = w.per_child[i];
    if (i == 0) o.watched = watched;
    o.cut_watched.insert(w.cut.begin(), w.cut.end());
    o.max_bytes = config.max_bytes;
    o.interval = absl::Seconds(config.interval_s) / k;
    o.phase = o.interval * (static_cast<double>(i) / children);
    o.watch_roster = true;
    o.seed = rng();
    streams.push_back(std::make_unique<LoadStream>(std::move(o)));
  }
  Sampler sampler(&db, &w);
  // The first list read is part of starting; then the children start.
  absl::SleepFor(absl::Seconds(2));
  ASSIGN_OR_RETURN(ParentCalls start_calls, ReadParentCalls(parent));
  for (auto& s : streams) s->Start();
  const absl::Time start = absl::Now();
  while (absl::Now() < start + absl::Seconds(config.seconds)) {
    absl::SleepFor(absl::Milliseconds(250));
    sampler.AddWatched(streams[0]->TakeWatched());
    sampler.Poll();
  }
  ASSIGN_OR_RETURN(ParentCalls end_calls, ReadParentCalls(parent));
  const double real_s = absl::ToDoubleSeconds(absl::Now() - start);
  for (auto& s : streams) s->Stop();
  sampler.AddWatched(streams[0]->TakeWatched());
  sampler.Poll();
  std::map<std::string, absl::Time> cut_at;
  for (const std::string& uuid : w.cut) {
    absl::Time latest = absl::InfinitePast();
    bool everywhere = true;
    for (auto& s : streams) {
      auto seen = s->cuts_seen();
      auto it = seen.find(uuid);
      if (it == seen.end()) {
        everywhere = false;
        break;
      }
      latest = std::max(latest, it->second);
    }
    if (everywhere) cut_at[uuid] = latest;
  }
  const double sim_s = real_s * k;
  CallFigures(end_calls.Minus(start_calls), sim_s / 60, k, result);
  LagFigures(sampler, k, sim_s, result);
  CrossingFigures(sampler, cut_at, w.cut.size(), k, sim_s, result);
  auto status = hub->Status();
  if (status.ok()) {
    result.note = absl::StrCat("poll every ", status->roster_poll_interval_effective_ms() * k / 1000,
                               " s, list ", status->roster_last_list_ms() * k, " ms, ",
                               status->pending_users(), " users pending");
  }
  return result;
}

// The old tool: one client per child, each child a database of its own.
absl::StatusOr<CaseResult> RunOldTool(const BenchConfig& config, int users, int children,
                                      PanelsimRunner& parent, const std::string& database,
                                      std::mt19937_64& rng) {
  CaseResult result;
  result.mode = "old tool";
  result.users = users;
  result.children = children;
  ParentDb db(database);
  ASSIGN_OR_RETURN(Workload w, MakeWorkload(config, users, children, db, database, rng));
  const int k = config.scale;
  // Child databases: a copy of the parent's users, usage 0, as after a sync.
  std::vector<std::string> child_dbs;
  std::vector<std::unique_ptr<ParentDb>> child_conns;
  for (int i = 0; i < children; ++i) {
    const std::string name = absl::StrCat(database, "_c", i);
    RETURN_IF_ERROR(db.Execute(absl::StrCat("DROP DATABASE IF EXISTS ", name)));
    RETURN_IF_ERROR(db.Execute(absl::StrCat("CREATE DATABASE ", name)));
    RETURN_IF_ERROR(db.Execute(absl::StrCat("CREATE TABLE ", name, ".user LIKE ", database, ".user")));
    RETURN_IF_ERROR(db.Execute(absl::StrCat("INSERT INTO ", name, ".user SELECT * FROM ", database,
                                            ".user")));
    RETURN_IF_ERROR(db.Execute(absl::StrCat("UPDATE ", name, ".user SET current_usage = 0")));
    child_dbs.push_back(name);
    child_conns.push_back(std::make_unique<ParentDb>(name));
  }
  const std::string root = parent.root_url();
  std::vector<std::unique_ptr<OldToolClient>> tools;
  for (int i = 0; i < children; ++i) {
    OldToolOptions o;
    o.parent_root_url = root;
    o.parent_proxy_path = parent.options().proxy_path;
    o.parent_api_key = parent.api_key();
    o.child_db = SharedMariaDb().Options(child_dbs[i]);
    o.cycle = absl::Seconds(config.interval_s) / k;
    tools.push_back(std::make_unique<OldToolClient>(std::move(o)));
  }
  Sampler sampler(&db, &w);
  std::map<std::string, uint64_t> cumulative;
  std::uniform_int_distribution<uint64_t> bytes(1, config.max_bytes);
  const absl::Duration interval = absl::Seconds(config.interval_s) / k;
  // Random traffic for every child's users but the cut ones (known amounts).
  std::vector<std::vector<std::string>> random_traffic = w.per_child;
  std::erase_if(random_traffic[0], [&](const std::string& u) { return w.cut_limit.contains(u); });
  ASSIGN_OR_RETURN(ParentCalls start_calls, ReadParentCalls(parent));
  for (int i = 0; i < children; ++i) tools[i]->Start(interval * (static_cast<double>(i) / children));
  const absl::Time start = absl::Now();
  absl::Time next_traffic = start;
  std::vector<absl::Time> add_times;  // child 0's traffic steps
  std::map<std::string, absl::Time> cut_at;
  while (absl::Now() < start + absl::Seconds(config.seconds)) {
    if (absl::Now() >= next_traffic) {
      // Each child panel's own traffic task: bytes for its users. Watched and
      // cut users get known amounts (on child 0 only).
      for (int i = 0; i < children; ++i) {
        RETURN_IF_ERROR(child_conns[i]->Execute(absl::StrCat(
            "UPDATE user SET current_usage = current_usage + 1 + FLOOR(RAND() * ",
            config.max_bytes, ") WHERE uuid IN (", QuotedList(random_traffic[i]), ")")));
      }
      std::vector<WatchedReport> added;
      const absl::Time now = absl::Now();
      // The lag is timed from the step (the old tool's own cycle spans), the
      // crossing from the cut users' known amounts.
      for (const std::vector<std::string>* group : {&w.cut}) {
        for (const std::string& uuid : *group) {
          const uint64_t b = bytes(rng);
          // Replace the random add of this user by a known one.
          RETURN_IF_ERROR(child_conns[0]->Execute(absl::StrCat(
              "UPDATE user SET current_usage = current_usage + ", b, " WHERE uuid = '", uuid, "'")));
          cumulative[uuid] += b;
          added.push_back({uuid, now, cumulative[uuid]});
        }
      }
      sampler.AddWatched(std::move(added));
      add_times.push_back(now);
      next_traffic += interval;
    }
    sampler.Poll();
    // Cut on every child: enable = 0 in every child's database.
    for (const std::string& uuid : w.cut) {
      if (cut_at.contains(uuid) || !sampler.inactive_at().contains(uuid)) continue;
      bool everywhere = true;
      for (auto& conn : child_conns) {
        auto rows = conn->Query(absl::StrCat("SELECT enable FROM user WHERE uuid = '", uuid, "'"));
        if (!rows.ok() || rows->rows.empty() || rows->rows[0][0].value_or("1") != "0") {
          everywhere = false;
          break;
        }
      }
      if (everywhere) cut_at[uuid] = absl::Now();
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  ASSIGN_OR_RETURN(ParentCalls end_calls, ReadParentCalls(parent));
  const double real_s = absl::ToDoubleSeconds(absl::Now() - start);
  for (auto& t : tools) t->Stop();
  // The old tool's lag: each watched add reaches the parent when the first
  // usage step that started after it ends (when the bytes survived: its
  // SET 0 loses what arrives during the step).
  const OldToolStats stats0 = tools[0]->stats();
  std::vector<double> lag;
  const size_t total = add_times.size();
  for (const absl::Time added : add_times) {
    for (const auto& [send_start, send_end] : stats0.send_spans) {
      if (send_start >= added) {
        lag.push_back(absl::ToDoubleSeconds(send_end - added) * k);
        break;
      }
    }
  }
  const double sim_s = real_s * k;
  CallFigures(end_calls.Minus(start_calls), sim_s / 60, k, result);
  if (!lag.empty() && lag.size() * 2 >= total) {
    result.lag_p50 = Fmt(Percentile(lag, 50));
    result.lag_p99 = lag.size() < total ? absl::StrFormat(">%.0f (%zu/%zu)", sim_s, lag.size(), total)
                                        : Fmt(Percentile(lag, 99));
  } else {
    result.lag_p50 = result.lag_p99 = absl::StrFormat(">%.0f (%zu/%zu)", sim_s, lag.size(), total);
  }
  CrossingFigures(sampler, cut_at, w.cut.size(), k, sim_s, result);
  result.note = absl::StrCat(stats0.cycles, " cycles of child 0 (", stats0.failed_cycles,
                             " failed)");
  for (const std::string& name : child_dbs) {
    db.Execute(absl::StrCat("DROP DATABASE IF EXISTS ", name)).IgnoreError();
  }
  return result;
}

// api mode on a parent that carries traffic of its own (panelsim's traffic
// through its usage task, atomic adds as the 12.x panel does): the parent's
// increase vs the children's acknowledged bytes + the parent's own bytes.
absl::Status RunLoss(const BenchConfig& config) {
  const int k = config.scale;
  constexpr int kUsers = 60, kChildren = 3;
  PanelsimOptions options;
  options.database = hsync::testing::UniqueDatabaseName("loss_parent");
  options.demo_users = kUsers;
  options.extra_args = CostArgs(kUsers, k);
  for (const std::string& arg :
       {std::string("--traffic-interval-ms"), absl::StrCat(1000 / k), std::string("--traffic-users-per-tick"),
        absl::StrCat(kUsers), std::string("--traffic-max-bytes"), std::string("50000000"),
        std::string("--usage-task-interval-ms"), absl::StrCat(60000 / k), std::string("--seed"),
        absl::StrCat(config.seed)}) {
    options.extra_args.push_back(arg);
  }
  ASSIGN_OR_RETURN(auto parent, PanelsimRunner::Start(options));
  std::mt19937_64 rng(config.seed);
  ASSIGN_OR_RETURN(const auto before, ReadParentUsage(options.database));
  std::vector<std::string> users;
  for (const auto& [uuid, unused] : before) users.push_back(uuid);
  std::map<std::string, std::string> tokens;
  for (int i = 0; i < kChildren; ++i) tokens[absl::StrCat("child-", i)] = absl::StrCat("loss-token-", i);
  HubRunnerOptions hub_options;
  hub_options.parent_url = parent->base_url();
  hub_options.parent_api_key = parent->api_key();
  hub_options.node_tokens = tokens;
  hub_options.apply_interval = Seconds(absl::Seconds(1) / k);
  hub_options.max_apply_delay = Seconds(absl::Seconds(5) / k);  // as in the issue's trial
  hub_options.roster_poll_interval = Seconds(absl::Seconds(30) / k);
  hub_options.urgent_horizon = Seconds(absl::Seconds(120) / k);
  hub_options.max_patches_per_minute = 0;  // every due user every cycle: the issue's trial
  hub_options.log_level = "warning";
  ASSIGN_OR_RETURN(auto hub, HubRunner::Start(hub_options));
  auto traffic_total = [&]() -> absl::StatusOr<uint64_t> {
    ASSIGN_OR_RETURN(auto answer, parent->Control("GET", "/_sim/traffic"));
    const nlohmann::json body = nlohmann::json::parse(answer.body, nullptr, false);
    if (!body.is_object()) return absl::InternalError("/_sim/traffic: not JSON");
    return body.value("total_bytes", uint64_t{0});
  };
  ASSIGN_OR_RETURN(const uint64_t traffic_before, traffic_total());
  std::vector<std::unique_ptr<LoadStream>> streams;
  for (int i = 0; i < kChildren; ++i) {
    LoadStreamOptions o;
    o.node_id = absl::StrCat("child-", i);
    o.token = tokens[o.node_id];
    o.target = hub->target();
    o.users = users;
    o.max_bytes = 100'000'000;
    o.interval = absl::Seconds(config.interval_s) / k;
    o.phase = o.interval * (static_cast<double>(i) / kChildren);
    o.watch_roster = false;
    o.seed = rng();
    streams.push_back(std::make_unique<LoadStream>(std::move(o)));
  }
  ASSIGN_OR_RETURN(ParentCalls start_calls, ReadParentCalls(*parent));
  for (auto& s : streams) s->Start();
  absl::SleepFor(absl::Seconds(config.seconds));
  for (auto& s : streams) s->Stop();
  // Parent traffic off, its counters into the database, the hub drained.
  RETURN_IF_ERROR(parent->Control("POST", "/_sim/traffic", R"({"enabled":false})").status());
  const absl::Time end = absl::Now() + absl::Seconds(120);
  while (absl::Now() < end) {
    auto status = hub->Status();
    if (status.ok() && status->pending_users() == 0) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  RETURN_IF_ERROR(parent->Control("POST", "/_sim/usage_task").status());
  ASSIGN_OR_RETURN(ParentCalls end_calls, ReadParentCalls(*parent));
  ASSIGN_OR_RETURN(const uint64_t traffic_after, traffic_total());
  ASSIGN_OR_RETURN(const auto after, ReadParentUsage(options.database));
  uint64_t acked = 0;
  for (auto& s : streams) {
    for (const auto& [uuid, bytes] : s->acked_bytes()) acked += bytes;
  }
  int64_t increase = 0;
  for (const auto& [uuid, value] : after) {
    increase += static_cast<int64_t>(value) - static_cast<int64_t>(before.at(uuid));
  }
  const uint64_t own = traffic_after - traffic_before;
  const int64_t expected = static_cast<int64_t>(acked + own);
  const double sim_minutes = absl::ToDoubleSeconds(absl::Seconds(config.seconds)) * k / 60;
  const ParentCalls calls = end_calls.Minus(start_calls);
  std::printf("\napi mode, parent with traffic of its own: %d users, %d children, %.1f simulated "
              "minutes, max_apply_delay 5 s, no budget\n  children's bytes acknowledged %llu, "
              "parent's own bytes %llu, parent increase %lld: %s %lld bytes (%.4f%% of all)\n  "
              "%.0f PATCHes/min\n",
              kUsers, kChildren, sim_minutes, static_cast<unsigned long long>(acked),
              static_cast<unsigned long long>(own), static_cast<long long>(increase),
              increase <= expected ? "LOST" : "COUNTED TWICE",
              static_cast<long long>(increase <= expected ? expected - increase : increase - expected),
              100.0 * static_cast<double>(std::llabs(expected - increase)) / static_cast<double>(expected),
              static_cast<double>(calls.patch_user) / sim_minutes);
  std::fflush(stdout);
  return absl::OkStatus();
}

int Usage() {
  std::fprintf(stderr,
               "usage: e2e_parent_cost_bench [--users 1000,10000] [--children 10,50]\n"
               "         [--modes api,database,old] [--seconds 60] [--scale 2] [--interval-s 30]\n"
               "         [--seed N]\n"
               "       e2e_parent_cost_bench --loss [--seconds 60] [--scale 2] [--interval-s 30]\n");
  return 2;
}

template <typename T>
bool ParseList(const std::string& text, std::vector<T>* out) {
  out->clear();
  const std::vector<std::string> parts = absl::StrSplit(text, ',', absl::SkipEmpty());
  for (const std::string& part : parts) {
    T v;
    if constexpr (std::is_same_v<T, std::string>) {
      v = part;
    } else if (!absl::SimpleAtoi(part, &v)) {
      return false;
    }
    out->push_back(v);
  }
  return !out->empty();
}

int Main(int argc, char** argv) {
  BenchConfig config;
  config.seed = E2eSeed();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has = i + 1 < argc;
    bool ok = true;
    if (flag == "--users") ok = has && ParseList(argv[++i], &config.users);
    else if (flag == "--children") ok = has && ParseList(argv[++i], &config.children);
    else if (flag == "--modes") ok = has && ParseList(argv[++i], &config.modes);
    else if (flag == "--seconds") ok = has && absl::SimpleAtoi(argv[++i], &config.seconds);
    else if (flag == "--scale") ok = has && absl::SimpleAtoi(argv[++i], &config.scale);
    else if (flag == "--interval-s") ok = has && absl::SimpleAtoi(argv[++i], &config.interval_s);
    else if (flag == "--seed") ok = has && absl::SimpleAtoi(argv[++i], &config.seed);
    else if (flag == "--loss") config.loss = true;
    else ok = false;
    if (!ok) return Usage();
  }
  if (config.scale < 1 || config.seconds < 10 || config.interval_s < 1) return Usage();
  if (config.loss) {
    absl::Status status = RunLoss(config);
    if (!status.ok()) std::fprintf(stderr, "loss run: %s\n", status.ToString().c_str());
    return status.ok() ? 0 : 1;
  }
  std::mt19937_64 rng(config.seed);
  std::printf("e2e_parent_cost_bench (seed %llu): %d real s per case, time scaled %dx (figures in "
              "simulated time), reports / old-tool cycle every %d s, parent = panelsim with "
              "PANEL.md's request costs. load average at start %.1f on %ld cores\n",
              static_cast<unsigned long long>(config.seed), config.seconds, config.scale,
              config.interval_s, LoadAverage(), sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);
  std::vector<CaseResult> results;
  for (int users : config.users) {
    for (int children : config.children) {
      for (const std::string& mode : config.modes) {
        PanelsimOptions options;
        options.database = hsync::testing::UniqueDatabaseName("cost_parent");
        options.demo_users = users;
        options.extra_args = CostArgs(users, config.scale);
        options.extra_args.push_back("--seed");
        options.extra_args.push_back(absl::StrCat(config.seed));
        auto parent = PanelsimRunner::Start(options);
        if (!parent.ok()) {
          std::fprintf(stderr, "panelsim: %s\n", parent.status().ToString().c_str());
          return 1;
        }
        const double load_before = LoadAverage();
        absl::StatusOr<CaseResult> r =
            mode == "old" ? RunOldTool(config, users, children, **parent, options.database, rng)
                          : RunHub(config, mode, users, children, **parent, options.database, rng);
        if (!r.ok()) {
          std::fprintf(stderr, "%s %d users %d children: %s\n", mode.c_str(), users, children,
                       r.status().ToString().c_str());
          continue;
        }
        r->note = absl::StrFormat("%s; load %.1f-%.1f", r->note, load_before, LoadAverage());
        std::printf("| %s | %d | %d | %.0f | %.1f (%.0f%%) | %.0f | %s / %s | %s | %s | %llu | %s |\n",
                    r->mode.c_str(), users, children, r->requests_per_min, r->busy_s_per_min,
                    r->busy_s_per_min / 60 * 100, r->patches_per_min, r->lag_p50.c_str(),
                    r->lag_p99.c_str(), r->to_inactive.c_str(), r->to_cut.c_str(),
                    static_cast<unsigned long long>(r->sessions), r->note.c_str());
        std::fflush(stdout);
        results.push_back(*r);
      }
    }
  }
  std::printf("\ncolumns: mode | active users | children | parent requests/min | panel busy "
              "s/min (share) | PATCHes/min | usage lag p50 / p99 s | crossing -> inactive on "
              "the parent s (worst of %d) | crossing -> cut on every child s | panel sessions "
              "created | notes\n",
              BenchConfig{}.cut_users);
  return 0;
}

}  // namespace
}  // namespace hsync::e2e

int main(int argc, char** argv) {
  const int code = hsync::e2e::Main(argc, argv);
  hsync::testing::StopSharedMariaDb();
  return code;
}
