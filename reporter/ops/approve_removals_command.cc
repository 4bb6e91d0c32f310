#include "reporter/ops/approve_removals_command.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "common/status_macros.h"
#include "reporter/panel/core_sync_queue.h"
#include "reporter/roster/held_removals.h"
#include "reporter/config/reporter_config.h"
#include "reporter/roster/roster_removal.h"
#include "reporter/state/sql_values.h"
#include "reporter/state/state_store.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {
namespace {

constexpr size_t kChunk = 1000;

// A panel name as one harmless terminal line.
std::string Printable(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (unsigned char c : name) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return out;
}

std::string When(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", t, absl::LocalTimeZone());
}

std::string PolicyText(RemovePolicy policy) {
  return policy == RemovePolicy::kDisable
             ? "remove_policy = disable: each user is disabled (enable = 0); its row and usage stay"
             : "remove_policy = delete: each user's row is deleted from the panel";
}

struct Outcome {
  uint64_t removed = 0;
  uint64_t cleared = 0;      // dropped from the held set
  uint64_t not_held = 0;     // listed, but no longer held when applying (left alone)
  std::vector<SkippedUser> refused;
};

// One transaction, locking user rows, then meta, then the held set (the
// applier's order).
absl::StatusOr<Outcome> Apply(MariaDbConnection& conn, StateStore& store,
                              const std::string& user_table, RemovePolicy policy,
                              const std::vector<HeldUser>& listed, const std::string& panel_database) {
  Outcome outcome;
  CoreSyncQueue core_queue(&store, panel_database);
  Transaction tx(conn);
  RETURN_IF_ERROR(tx.status());
  std::unordered_map<std::string, std::pair<int64_t, bool>> rows;  // uuid -> id, enabled
  for (size_t start = 0; start < listed.size(); start += kChunk) {
    std::string in_list;
    for (size_t i = start; i < std::min(listed.size(), start + kChunk); ++i) {
      absl::StrAppend(&in_list, in_list.empty() ? "" : ",", conn.Quote(listed[i].uuid));
    }
    ASSIGN_OR_RETURN(ResultSet rs,
                     conn.Query(absl::StrCat("SELECT id, uuid, enable FROM ", user_table,
                                             " WHERE uuid IN (", in_list, ") FOR UPDATE")));
    for (const auto& row : rs.rows) {
      rows[absl::AsciiStrToLower(CellStr(row[1]))] = {CellI64(row[0]), CellU64(row[2]) != 0};
    }
  }
  RETURN_IF_ERROR(store.LockMeta(conn).status());
  HeldRemovals held_removals(&store);
  ASSIGN_OR_RETURN(std::unordered_set<std::string> held, held_removals.LockAll(conn));
  std::vector<RemovalTarget> targets;
  std::vector<std::string> clear;
  for (const HeldUser& user : listed) {
    if (!held.contains(user.uuid)) {
      ++outcome.not_held;
      continue;
    }
    clear.push_back(user.uuid);
    auto row = rows.find(user.uuid);
    if (row == rows.end()) continue;                                        // gone already
    if (policy == RemovePolicy::kDisable && !row->second.second) continue;  // disabled already
    targets.push_back({user.uuid, row->second.first});
  }
  ASSIGN_OR_RETURN(RemovalOutcome removal,
                   RemoveLocalUsers(conn, store, user_table, policy, targets,
                                    [] { return absl::OkStatus(); }));
  // The running reporter's core syncer makes the cores follow (a disabled
  // user leaves xray; a deleted row can only leave at xray's next restart).
  std::vector<CoreChange> core_changes;
  for (const auto& uuid : removal.removed) {
    core_changes.push_back(
        {uuid, policy == RemovePolicy::kDelete ? CoreAction::kDelete : CoreAction::kSync, true});
  }
  RETURN_IF_ERROR(core_queue.Record(conn, core_changes, absl::Now()));
  std::unordered_set<std::string> refused;
  for (const auto& r : removal.refused) refused.insert(r.uuid);
  std::erase_if(clear, [&](const std::string& uuid) { return refused.contains(uuid); });
  RETURN_IF_ERROR(held_removals.Drop(conn, clear));
  RETURN_IF_ERROR(tx.Commit());
  outcome.removed = removal.removed.size();
  outcome.cleared = clear.size();
  outcome.refused = std::move(removal.refused);
  return outcome;
}

bool Confirmed(const ApproveRemovalsRequest& request, size_t count, RemovePolicy policy,
               std::istream& in, std::ostream& out) {
  if (request.yes) return true;
  if (!request.interactive) return false;
  out << (policy == RemovePolicy::kDisable ? "Disable" : "Delete") << " these " << count
      << " users? [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(in, answer)) return false;
  answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
  return answer == "y" || answer == "yes";
}

}  // namespace

int RunApproveRemovalsCommand(const ApproveRemovalsRequest& request, std::istream& in,
                              std::ostream& out, std::ostream& err) {
  auto config = LoadReporterConfig(request.config_path);
  if (!config.ok()) {
    err << "hiddify-sync-reporter: invalid configuration: " << config.status().message() << "\n";
    return 2;
  }
  MariaDbOptions db;
  db.unix_socket = config->mysql.socket;
  db.user = config->mysql.user;
  db.password = config->mysql.password;
  auto conn = MariaDbConnection::Connect(db);
  if (!conn.ok()) {
    err << "hiddify-sync-reporter: MariaDB: " << conn.status().message() << "\n";
    return 2;
  }
  StateStore store(config->mysql.state_database, config->collect.baseline_existing_usage);
  const std::string user_table = absl::StrCat("`", config->mysql.database, "`.`user`");
  const RemovePolicy policy = config->roster.remove_policy;
  auto fail = [&](const absl::Status& s) {
    err << "hiddify-sync-reporter: " << s.message() << "\n";
    return 2;
  };

  auto tables = (*conn)->Query(absl::StrCat(
      "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ",
      (*conn)->Quote(store.database()), " AND TABLE_NAME IN ('held_removal', 'held_removal_trip')"));
  if (!tables.ok()) return fail(tables.status());
  if (tables->rows.empty() || CellU64(tables->rows[0][0]) < 2) {
    out << "No removals are held back (state schema `" << store.database()
        << "` has no held removals yet).\n";
    return 0;
  }
  HeldRemovals held_removals(&store);
  auto listed = held_removals.List(**conn, user_table);
  if (!listed.ok()) return fail(listed.status());
  if (listed->empty()) {
    out << "No removals are held back by the mass-removal guard.\n";
    return 0;
  }
  auto summary = held_removals.Summary(**conn);
  if (!summary.ok()) return fail(summary.status());

  const char* verb = RemovalVerb(policy);
  out << "The mass-removal guard holds back " << listed->size() << " removals, since "
      << When(summary->since) << ".\n"
      << "Last trip: " << summary->reason << "\n"
      << "Policy:    " << PolicyText(policy) << "\n\n";
  size_t to_change = 0;
  out << "  uuid                                  name\n";
  for (const HeldUser& user : *listed) {
    std::string note;
    if (!user.exists) {
      note = "  (no longer on this panel: only forgotten)";
    } else if (policy == RemovePolicy::kDisable && !user.enabled) {
      note = "  (already disabled: only forgotten)";
    } else {
      ++to_change;
    }
    out << "  " << user.uuid << "  " << (user.exists ? Printable(user.name) : "-") << note << "\n";
  }
  out << "\n" << listed->size() << " held users; " << to_change << " will be " << verb << ".\n";

  if (!Confirmed(request, listed->size(), policy, in, out)) {
    if (!request.yes && !request.interactive) {
      out << "Nothing changed: no terminal to confirm on; add --yes to apply these removals.\n";
    } else {
      out << "Nothing changed.\n";
    }
    return 1;
  }
  auto outcome = Apply(**conn, store, user_table, policy, *listed, config->mysql.database);
  if (!outcome.ok()) {
    err << "hiddify-sync-reporter: nothing changed: " << outcome.status().message() << "\n";
    return 2;
  }
  out << (policy == RemovePolicy::kDisable ? "Disabled " : "Deleted ") << outcome->removed
      << " users; " << outcome->cleared << " held removals cleared.\n";
  if (outcome->not_held > 0) {
    out << outcome->not_held
        << " listed users were no longer held (back on the parent meanwhile) and were left alone.\n";
  }
  for (const SkippedUser& s : outcome->refused) {
    out << "  not " << verb << " (still held): " << s.uuid << ": " << s.reason << "\n";
  }
  if (outcome->removed > 0) {
    out << "The running reporter makes the proxy cores follow these users and runs the panel's"
           " apply path (hiddify-sync-reporter status shows the core-sync queue).\n";
  }
  return outcome->refused.empty() ? 0 : 1;
}

}  // namespace hsync::reporter
