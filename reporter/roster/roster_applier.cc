#include "reporter/roster/roster_applier.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "reporter/panel/panel_user_defaults.h"
#include "reporter/roster/roster_removal.h"
#include "reporter/roster/roster_savepoint.h"
#include "reporter/roster/roster_user_row.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {
namespace {

constexpr size_t kInsertBatch = 500;
constexpr size_t kInListChunk = 1000;

struct LocalUser {
  int64_t id = 0;
  bool enabled = false;
  std::array<SqlCell, kSyncedColumns.size()> values;
};

// Columns whose empty string and NULL mean the same (see roster_user_row.cc).
bool NullableText(size_t column) {
  std::string_view c = kSyncedColumns[column];
  return c == "comment" || c == "lang" || c == "ed25519_private_key" ||
         c == "ed25519_public_key" || c == "wg_pk" || c == "wg_pub" || c == "wg_psk";
}

SqlValue ToSqlValue(const SqlCell& cell) {
  if (!cell.has_value()) return SqlValue();
  return SqlValue(*cell);
}

std::string SqlLiteral(MariaDbConnection& conn, const SqlCell& cell) {
  return cell.has_value() ? conn.Quote(*cell) : std::string("NULL");
}

// Reads the local rows (FOR UPDATE): all of them, or those whose uuid is in `only`.
absl::StatusOr<std::unordered_map<std::string, LocalUser>> LoadLocalUsers(
    MariaDbConnection& conn, const std::string& table, const std::vector<std::string>* only) {
  const std::string head = absl::StrCat("SELECT id, uuid, enable, ",
                                        absl::StrJoin(kSyncedColumns, ", "), " FROM ", table);
  std::unordered_map<std::string, LocalUser> users;
  auto take = [&](const ResultSet& rs) {
    for (const auto& row : rs.rows) {
      LocalUser u;
      u.id = CellI64(row[0]);
      u.enabled = CellU64(row[2]) != 0;
      for (size_t i = 0; i < kSyncedColumns.size(); ++i) {
        u.values[i] = row[3 + i];
        if (NullableText(i) && u.values[i].has_value() && u.values[i]->empty()) u.values[i].reset();
      }
      users[absl::AsciiStrToLower(CellStr(row[1]))] = std::move(u);
    }
  };
  if (only == nullptr) {
    ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat(head, " FOR UPDATE")));
    take(rs);
    return users;
  }
  for (size_t start = 0; start < only->size(); start += kInListChunk) {
    std::string in_list;
    for (size_t i = start; i < std::min(only->size(), start + kInListChunk); ++i) {
      if (!in_list.empty()) in_list += ',';
      in_list += conn.Quote((*only)[i]);
    }
    ASSIGN_OR_RETURN(ResultSet rs,
                     conn.Query(absl::StrCat(head, " WHERE uuid IN (", in_list, ") FOR UPDATE")));
    take(rs);
  }
  return users;
}

absl::StatusOr<uint64_t> CountLocalUsers(MariaDbConnection& conn, const std::string& table) {
  ASSIGN_OR_RETURN(ResultSet rs, conn.Query(absl::StrCat("SELECT COUNT(*) FROM ", table)));
  return rs.rows.empty() ? 0 : CellU64(rs.rows[0][0]);
}

// Local users a removal could still take (enabled ones with the disable
// policy, every row with delete) that the guard does not already hold.
absl::StatusOr<uint64_t> CountRemovableUnheld(MariaDbConnection& conn, const std::string& table,
                                              const std::string& held_table, RemovePolicy policy) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat(
                       "SELECT COUNT(*) FROM ", table, " WHERE ",
                       policy == RemovePolicy::kDisable ? "enable <> 0 AND " : "",
                       "uuid NOT IN (SELECT uuid FROM ", held_table, ")")));
  return rs.rows.empty() ? 0 : CellU64(rs.rows[0][0]);
}

// The admin that owns users created here: the lowest-id super admin (id 1 on
// a normal install).
absl::StatusOr<int64_t> OwnerAdminId(MariaDbConnection& conn, const std::string& database) {
  ASSIGN_OR_RETURN(ResultSet rs,
                   conn.Query(absl::StrCat("SELECT MIN(id) FROM `", database,
                                           "`.`admin_user` WHERE mode = 'super_admin'")));
  if (rs.rows.empty() || !rs.rows[0][0].has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "roster: no super_admin in `", database, "`.admin_user to own the users created here"));
  }
  return CellI64(rs.rows[0][0]);
}

// The columns whose change moves the user in or out of a proxy core: enable,
// the keys, and what decides is_active (usage_limit, package_days, start_date).
bool CoreRelevantChange(const LocalUser& l, const UserRow& w) {
  for (size_t i : {1, 2, 5, 9, 10, 11, 12, 13, 14}) {
    if (l.values[i] != w.values[i]) return true;
  }
  return false;
}

}  // namespace

RosterApplier::RosterApplier(StateStore* store, RosterApplyOptions options)
    : store_(store), held_(store), options_(std::move(options)) {}

absl::StatusOr<RosterApplyResult> RosterApplier::Apply(
    MariaDbConnection& conn, const hiddify_sync::v1::RosterUpdate& update) {
  RosterApplyResult result;
  const std::string user_table = absl::StrCat("`", options_.panel_database, "`.`user`");

  // Validate first: the last occurrence of a uuid wins.
  std::vector<UserRow> wanted;
  std::unordered_map<std::string, size_t> wanted_index;
  std::unordered_set<std::string> present;  // on the parent, valid or not
  std::unordered_map<std::string, std::string> invalid;  // uuid -> why (the last occurrence)
  for (const auto& user : update.upserts()) {
    const std::string lower = absl::AsciiStrToLower(user.uuid());
    present.insert(lower);
    auto row = UserRowFromRoster(user);
    if (!row.ok()) {
      invalid[lower] = std::string(row.status().message());
      if (auto it = wanted_index.find(lower); it != wanted_index.end()) {
        wanted[it->second].uuid.clear();  // an earlier valid occurrence is void
      }
      continue;
    }
    invalid.erase(lower);
    auto [it, inserted] = wanted_index.emplace(row->uuid, wanted.size());
    if (inserted) wanted.push_back(*std::move(row));
    else wanted[it->second] = *std::move(row);
  }
  std::erase_if(wanted, [](const UserRow& w) { return w.uuid.empty(); });
  for (const auto& user : update.upserts()) {
    const std::string lower = absl::AsciiStrToLower(user.uuid());
    auto it = invalid.find(lower);
    if (it == invalid.end()) continue;
    result.skipped.push_back({lower, it->second});
    invalid.erase(it);
  }
  std::vector<std::string> removed_uuids;
  if (!update.full()) {
    for (const auto& uuid : update.removed_uuids()) {
      std::string lower = absl::AsciiStrToLower(uuid);
      if (!present.contains(lower)) removed_uuids.push_back(std::move(lower));
    }
  }

  Transaction tx(conn);
  RETURN_IF_ERROR(tx.status());
  std::vector<CoreChange> core_changes;  // recorded just before the commit
  // Watermarks are written only when last_reset_time changes or users are
  // deleted; only then does this transaction serialize with collect (whose
  // snapshot must not predate these writes), so a collect of a large table
  // never delays a block.
  bool meta_locked = false;
  auto lock_meta = [&]() -> absl::Status {
    if (meta_locked) return absl::OkStatus();
    meta_locked = true;
    return store_->LockMeta(conn).status();
  };
  std::unordered_map<std::string, LocalUser> local;
  if (update.full()) {
    ASSIGN_OR_RETURN(local, LoadLocalUsers(conn, user_table, nullptr));
  } else {
    std::vector<std::string> keys;
    keys.reserve(wanted.size() + removed_uuids.size());
    for (const auto& w : wanted) keys.push_back(w.uuid);
    keys.insert(keys.end(), removed_uuids.begin(), removed_uuids.end());
    ASSIGN_OR_RETURN(local, LoadLocalUsers(conn, user_table, &keys));
  }

  // Updates of existing users, only where something differs. Each is one
  // statement: one the database refuses is undone by InnoDB on its own
  // (statement atomicity, triggers included) and skips only that user.
  std::string set_list;
  for (const auto& column : kSyncedColumns) {
    absl::StrAppend(&set_list, set_list.empty() ? "" : ", ", "`", column, "` = ?");
  }
  std::unique_ptr<PreparedStatement> update_stmt;
  std::unique_ptr<PreparedStatement> reset_seen_stmt;
  std::vector<const UserRow*> to_create;
  for (const UserRow& w : wanted) {
    auto found = local.find(w.uuid);
    if (found == local.end()) {
      to_create.push_back(&w);
      continue;
    }
    const LocalUser& l = found->second;
    if (l.values == w.values) {
      ++result.unchanged;
      continue;
    }
    if (update_stmt == nullptr) {
      ASSIGN_OR_RETURN(update_stmt, conn.Prepare(absl::StrCat("UPDATE ", user_table, " SET ",
                                                              set_list, " WHERE id = ?")));
    }
    const bool reset_time_changes = l.values[kLastResetColumn] != w.values[kLastResetColumn];
    if (reset_time_changes) RETURN_IF_ERROR(lock_meta());
    std::vector<SqlValue> params;
    params.reserve(kSyncedColumns.size() + 1);
    for (const auto& v : w.values) params.push_back(ToSqlValue(v));
    params.push_back(SqlValue(l.id));
    if (absl::Status written = update_stmt->Execute(params).status(); !written.ok()) {
      if (!IsRowRefusal(written)) return written;
      result.skipped.push_back({w.uuid, RefusalReason(written)});
      continue;
    }
    if (CoreRelevantChange(l, w)) core_changes.push_back({w.uuid, CoreAction::kSync, true});
    if (reset_time_changes) {
      // Our own write of last_reset_time is not a reset of the child's counter.
      // But a local reset the collector has not seen yet (the local date is set
      // and differs from the one seen) must survive it: record it as the
      // collector would (nothing reported since the reset), else the bytes
      // reported before the reset are subtracted from the traffic after it.
      // MariaDB assigns left to right: reported_bytes reads the old date seen.
      if (reset_seen_stmt == nullptr) {
        ASSIGN_OR_RETURN(
            reset_seen_stmt,
            conn.Prepare(absl::StrCat(
                "UPDATE ", store_->Table("watermark"),
                " SET reported_bytes = IF(? IS NOT NULL AND NOT (last_reset_seen <=> ?), 0,"
                " reported_bytes), last_reset_seen = ? WHERE user_id = ?")));
      }
      RETURN_IF_ERROR(reset_seen_stmt
                          ->Execute({ToSqlValue(l.values[kLastResetColumn]),
                                     ToSqlValue(l.values[kLastResetColumn]),
                                     ToSqlValue(w.values[kLastResetColumn]), SqlValue(l.id)})
                          .status());
    }
    ++result.updated;
  }

  // Creations, in multi-row INSERTs with every NOT NULL column given. A batch
  // the database refuses is rolled back to its savepoint and inserted user by
  // user, skipping only the refused ones.
  if (!to_create.empty()) {
    ASSIGN_OR_RETURN(int64_t owner_id, OwnerAdminId(conn, options_.panel_database));
    const std::string columns = absl::StrCat(
        " (uuid, ", absl::StrJoin(kSyncedColumns, ", "),
        ", username, password, added_by, current_usage, max_ips, last_online) VALUES ");
    auto created_core = [&](const UserRow& w) {
      if (w.values[9] == std::optional<std::string>("1")) {
        core_changes.push_back({w.uuid, CoreAction::kSync, true});
      }
    };
    const std::string head = absl::StrCat("INSERT INTO ", user_table, columns);
    const std::string local_values =
        absl::StrCat(",'',", owner_id, ",0,100,'", std::string(kNeverOnline), "')");
    std::unique_ptr<PreparedStatement> insert_one;
    auto insert_singly = [&](size_t from, size_t to) -> absl::Status {
      if (insert_one == nullptr) {
        std::string placeholders = "(?";
        for (size_t i = 0; i <= kSyncedColumns.size(); ++i) placeholders += ",?";
        ASSIGN_OR_RETURN(insert_one, conn.Prepare(absl::StrCat(head, placeholders, local_values)));
      }
      for (size_t i = from; i < to; ++i) {
        const UserRow& w = *to_create[i];
        std::vector<SqlValue> params{SqlValue(w.uuid)};
        for (const auto& v : w.values) params.push_back(ToSqlValue(v));
        params.push_back(SqlValue(PanelUsername()));
        absl::Status written = insert_one->Execute(params).status();
        if (written.ok()) {
          ++result.created;
          created_core(w);
        } else if (IsRowRefusal(written)) {
          result.skipped.push_back({w.uuid, RefusalReason(written)});
        } else {
          return written;
        }
      }
      return absl::OkStatus();
    };
    std::string sql;
    size_t batch_start = 0;
    for (size_t i = 0; i < to_create.size(); ++i) {
      const UserRow& w = *to_create[i];
      absl::StrAppend(&sql, sql.empty() ? head : ",", "(", conn.Quote(w.uuid));
      for (const auto& v : w.values) absl::StrAppend(&sql, ",", SqlLiteral(conn, v));
      absl::StrAppend(&sql, ",", conn.Quote(PanelUsername()), local_values);
      if ((i + 1) % kInsertBatch == 0 || i + 1 == to_create.size()) {
        absl::Status batch =
            InSavepoint(conn, "hsync_insert_batch", [&] { return conn.Execute(sql).status(); });
        if (batch.ok()) {
          result.created += i + 1 - batch_start;
          for (size_t k = batch_start; k <= i; ++k) created_core(*to_create[k]);
        } else if (IsRowRefusal(batch)) {
          RETURN_IF_ERROR(insert_singly(batch_start, i + 1));
        } else {
          return batch;
        }
        sql.clear();
        batch_start = i + 1;
      }
    }
  }

  // Removals, behind the mass-removal guard, which judges only the users it
  // does not hold back already (see roster_applier.h).
  std::vector<RemovalTarget> candidates;
  std::unordered_set<std::string> deleting;  // queued for deletion through the API already
  if (options_.core_changes != nullptr && options_.remove_policy == RemovePolicy::kDelete) {
    ASSIGN_OR_RETURN(deleting, options_.core_changes->PendingDeletes(conn));
  }
  auto consider = [&](const std::string& uuid, const LocalUser& l) {
    if (options_.remove_policy == RemovePolicy::kDisable && !l.enabled) return;  // nothing to do
    if (deleting.contains(uuid)) return;  // the core syncer deletes it
    candidates.push_back({uuid, l.id});
  };
  if (update.full()) {
    for (const auto& [uuid, l] : local) {
      if (!present.contains(uuid)) consider(uuid, l);
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const RemovalTarget& a, const RemovalTarget& b) { return a.id < b.id; });
  } else {
    for (const auto& uuid : removed_uuids) {
      if (auto found = local.find(uuid); found != local.end()) consider(uuid, found->second);
    }
  }
  ASSIGN_OR_RETURN(std::unordered_set<std::string> held, held_.LockAll(conn));
  std::vector<std::string> unhold;  // back on the parent, or nothing left to remove
  std::vector<RemovalTarget> fresh;  // candidates not held yet
  {
    std::unordered_set<std::string> candidate_set;
    for (const auto& c : candidates) {
      candidate_set.insert(c.uuid);
      if (held.contains(c.uuid)) ++result.still_held;
      else fresh.push_back(c);
    }
    for (const auto& uuid : held) {
      if (present.contains(uuid) || (update.full() && !candidate_set.contains(uuid))) {
        unhold.push_back(uuid);
      }
    }
  }
  std::sort(unhold.begin(), unhold.end());
  RETURN_IF_ERROR(held_.Drop(conn, unhold));
  result.unheld = unhold.size();

  // The table is counted only when someone would be removed: a delta that
  // only upserts costs nothing proportional to the child's table.
  uint64_t local_count = 0;
  if (!fresh.empty()) {
    ASSIGN_OR_RETURN(local_count, CountLocalUsers(conn, user_table));
  }
  const double limit = std::max(static_cast<double>(options_.guard_min),
                                options_.guard_fraction * static_cast<double>(local_count));
  const char* verb = RemovalVerb(options_.remove_policy);
  const std::string held_note = absl::StrCat(
      "; nobody was ", verb, ", the ", fresh.size(),
      " users are held back until `hiddify-sync-reporter approve-removals` (or they reappear)");
  if (!fresh.empty() && update.full() && update.upserts_size() == 0 && local_count > 0) {
    result.guard_reason = absl::StrCat("roster version ", update.version(), " is empty while ",
                                       local_count, " local users exist", held_note);
  } else if (static_cast<double>(fresh.size()) > limit) {
    result.guard_reason = absl::StrCat(
        "roster version ", update.version(), update.full() ? "" : " (a delta)", " would have ",
        verb, " ", fresh.size(), " of ", local_count, " local users (more than max(",
        options_.guard_min, ", ", options_.guard_fraction, " x ", local_count, "))", held_note);
  } else if (!fresh.empty() && !update.full() && update.upserts_size() == 0) {
    ASSIGN_OR_RETURN(uint64_t removable,
                     CountRemovableUnheld(conn, user_table, store_->Table("held_removal"),
                                          options_.remove_policy));
    if (removable <= fresh.size()) {
      result.guard_reason = absl::StrCat(
          "roster version ", update.version(), " (a delta) would have ", verb, " the last ",
          fresh.size(), options_.remove_policy == RemovePolicy::kDisable ? " enabled" : "",
          " local users, leaving the child empty", held_note);
    }
  }
  if (!result.guard_reason.empty()) {
    result.guard_tripped = true;
    std::vector<std::string> uuids;
    uuids.reserve(fresh.size());
    for (const auto& f : fresh) uuids.push_back(f.uuid);
    RETURN_IF_ERROR(held_.Hold(conn, uuids, update.version(), result.guard_reason, absl::Now()));
    result.held = uuids.size();
  } else if (!fresh.empty()) {
    // With core sync, a deleted user is disabled now and deleted by the panel's API.
    const bool api_deletes =
        options_.core_changes != nullptr && options_.remove_policy == RemovePolicy::kDelete;
    ASSIGN_OR_RETURN(RemovalOutcome outcome,
                     RemoveLocalUsers(conn, *store_, user_table,
                                      api_deletes ? RemovePolicy::kDisable : options_.remove_policy,
                                      fresh, lock_meta));
    for (const auto& uuid : outcome.removed) {
      core_changes.push_back({uuid, api_deletes ? CoreAction::kDelete : CoreAction::kSync, true});
    }
    (options_.remove_policy == RemovePolicy::kDisable ? result.disabled : result.removed) =
        outcome.removed.size();
    result.skipped.insert(result.skipped.end(), outcome.refused.begin(), outcome.refused.end());
  }
  if (options_.core_changes != nullptr && !core_changes.empty()) {
    RETURN_IF_ERROR(options_.core_changes->Record(conn, core_changes, absl::Now()));
  }
  result.core_changes = core_changes.size();
  if (usage_hook_ != nullptr) {
    RETURN_IF_ERROR(usage_hook_->AfterRosterWrites(conn, update, result.skipped));
  }
  RETURN_IF_ERROR(tx.Commit());
  return result;
}

}  // namespace hsync::reporter
