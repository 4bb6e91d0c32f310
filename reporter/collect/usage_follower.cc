#include "reporter/collect/usage_follower.h"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "reporter/collect/atomic_usage_probe.h"
#include "reporter/roster/roster_user_row.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {
namespace {

constexpr size_t kChunk = 1000;

// Column order of the locking read below.
enum Col { kId, kUuid, kCurrent, kLastReset, kMarkUuid, kMarkReported, kMarkResetSeen };

SqlValue CellValue(const SqlCell& cell) {
  if (!cell.has_value()) return SqlValue();
  return SqlValue(*cell);
}

}  // namespace

UsageFollower::UsageFollower(StateStore* store, std::string panel_database, StatusBoard* board,
                             absl::Duration recheck)
    : store_(store), panel_database_(std::move(panel_database)), board_(board), recheck_(recheck) {}

bool UsageFollower::following() const {
  absl::MutexLock lock(&mu_);
  return atomic_;
}

absl::StatusOr<bool> UsageFollower::CheckPanel(MariaDbConnection& conn) {
  ASSIGN_OR_RETURN(bool atomic, PanelAddsUsageAtomically(conn, panel_database_));
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    changed = !checked_ || atomic != atomic_;
    checked_ = true;
    atomic_ = atomic;
    checked_at_ = absl::Now();
  }
  if (changed) {
    if (atomic) {
      LogInfo(absl::StrCat("usage_mode follow: the panel adds usage atomically (`", panel_database_,
                           "`.", kAtomicUsageProcedure,
                           " exists); the child's counters follow the parent's"));
    } else {
      LogWarning(absl::StrCat("usage_mode follow: `", panel_database_, "`: ", kNoAtomicUsageNote));
    }
  }
  Publish(nullptr);
  return atomic;
}

void UsageFollower::Publish(const UsageFollowResult* moved) {
  if (board_ == nullptr) return;
  bool atomic;
  absl::Time at;
  {
    absl::MutexLock lock(&mu_);
    atomic = atomic_;
    at = checked_at_;
  }
  board_->Update([&](auto& r) {
    r.set_usage_mode_effective(atomic ? "follow" : "watermark");
    r.set_panel_adds_usage_atomically(atomic);
    r.set_usage_mode_note(atomic ? "" : kNoAtomicUsageNote);
    *r.mutable_usage_mode_checked_at() = ToProtoTimestamp(at);
    if (moved != nullptr) {
      r.set_usage_follow_users_moved(r.usage_follow_users_moved() + moved->users_moved);
      r.set_usage_follow_bytes_moved(r.usage_follow_bytes_moved() + moved->bytes_moved);
    }
  });
}

absl::Status UsageFollower::AfterRosterWrites(MariaDbConnection& conn,
                                              const hiddify_sync::v1::RosterUpdate& update,
                                              const std::vector<SkippedUser>& skipped) {
  if (update.upserts_size() == 0) return absl::OkStatus();
  bool due;
  {
    absl::MutexLock lock(&mu_);
    due = !checked_ || absl::Now() - checked_at_ >= recheck_;
  }
  if (due) RETURN_IF_ERROR(CheckPanel(conn).status());
  if (!following()) return absl::OkStatus();

  std::unordered_set<std::string> skip;
  for (const auto& s : skipped) skip.insert(s.uuid);
  // The last occurrence of a uuid wins, as in the applier.
  std::unordered_map<std::string, size_t> index;
  std::vector<ParentUsage> users;
  for (const auto& u : update.upserts()) {
    std::string uuid = absl::AsciiStrToLower(u.uuid());
    if (!IsCanonicalUuid(uuid) || skip.contains(uuid)) continue;
    if (u.current_usage_bytes() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) continue;
    auto [it, inserted] = index.emplace(uuid, users.size());
    if (inserted) users.push_back({std::move(uuid), u.current_usage_bytes()});
    else users[it->second].bytes = u.current_usage_bytes();
  }
  ASSIGN_OR_RETURN(UsageFollowResult result, Follow(conn, users));
  if (result.users_moved > 0 || result.watermarks_created > 0) Publish(&result);
  if (result.resets_resolved > 0) {
    LogInfo(absl::StrCat("usage follow: ", result.resets_resolved,
                         " local resets not yet collected were kept (their bytes since the reset"
                         " stay unreported)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UsageFollowResult> UsageFollower::Follow(MariaDbConnection& conn,
                                                        const std::vector<ParentUsage>& users) {
  UsageFollowResult result;
  if (users.empty()) return result;
  // Collect and this serialize on the meta row: its snapshot never sees one
  // half of an offset.
  ASSIGN_OR_RETURN(StreamState meta, store_->LockMeta(conn));
  if (meta.baseline_pending) return result;  // the first collect records the baseline

  const std::string user_table = absl::StrCat("`", panel_database_, "`.`user`");
  const std::string mark_table = store_->Table("watermark");
  ASSIGN_OR_RETURN(auto add_usage,
                   conn.Prepare(absl::StrCat("UPDATE ", user_table,
                                             " SET current_usage = current_usage + ? WHERE id = ?")));
  ASSIGN_OR_RETURN(auto move_mark,
                   conn.Prepare(absl::StrCat("UPDATE ", mark_table,
                                             " SET reported_bytes = ?, last_reset_seen = ?,"
                                             " unsubtracted_bytes = IF(?, 0, unsubtracted_bytes)"
                                             " WHERE user_id = ?")));
  // No watermark, or one of another uuid (a reused id): a fresh one.
  ASSIGN_OR_RETURN(auto new_mark,
                   conn.Prepare(absl::StrCat(
                       "INSERT INTO ", mark_table,
                       " (user_id, uuid, reported_bytes, last_online_reported, last_reset_seen,"
                       " unsubtracted_bytes) VALUES (?, ?, ?, NULL, ?, 0) ON DUPLICATE KEY UPDATE"
                       " uuid = VALUES(uuid), reported_bytes = VALUES(reported_bytes),"
                       " last_online_reported = NULL, last_reset_seen = VALUES(last_reset_seen),"
                       " unsubtracted_bytes = 0")));

  for (size_t start = 0; start < users.size(); start += kChunk) {
    const size_t end = std::min(users.size(), start + kChunk);
    std::unordered_map<std::string, uint64_t> parent;
    std::string in_list;
    for (size_t i = start; i < end; ++i) {
      parent[users[i].uuid] = users[i].bytes;
      absl::StrAppend(&in_list, in_list.empty() ? "" : ",", conn.Quote(users[i].uuid));
    }
    // Locks the users' rows: the panel's own adds wait until we commit, so
    // the current value read here is the one the offset moves.
    ASSIGN_OR_RETURN(
        ResultSet rows,
        conn.Query(absl::StrCat(
            "SELECT u.id, u.uuid, u.current_usage, u.last_reset_time, w.uuid, w.reported_bytes,"
            " w.last_reset_seen FROM ", user_table, " u LEFT JOIN ", mark_table,
            " w ON w.user_id = u.id WHERE u.uuid IN (", in_list, ") FOR UPDATE")));
    for (const auto& row : rows.rows) {
      const std::string uuid = absl::AsciiStrToLower(CellStr(row[kUuid]));
      auto found = parent.find(uuid);
      if (found == parent.end()) continue;
      const int64_t id = CellI64(row[kId]);
      const uint64_t current = CellU64(row[kCurrent]);
      const bool has_mark = row[kMarkUuid].has_value() &&
                            absl::AsciiStrToLower(*row[kMarkUuid]) == uuid;
      const uint64_t reported = has_mark ? CellU64(row[kMarkReported]) : 0;
      // Collect's reset test: the counter went down, or the panel's reset
      // date moved, since collect last looked.
      const bool unseen_reset =
          has_mark && (current < reported ||
                       (row[kLastReset].has_value() && row[kLastReset] != row[kMarkResetSeen]));
      const uint64_t base = unseen_reset ? 0 : reported;  // current - base = unreported bytes
      const int64_t offset = static_cast<int64_t>(found->second) - static_cast<int64_t>(base);
      if (offset != 0) {
        RETURN_IF_ERROR(add_usage->Execute({SqlValue(offset), SqlValue(id)}).status());
        ++result.users_moved;
        result.bytes_moved += offset;
      }
      if (!has_mark) {
        RETURN_IF_ERROR(new_mark
                            ->Execute({SqlValue(id), SqlValue(uuid), SqlValue(found->second),
                                       CellValue(row[kLastReset])})
                            .status());
        ++result.watermarks_created;
      } else if (offset != 0 || unseen_reset) {
        RETURN_IF_ERROR(move_mark
                            ->Execute({SqlValue(found->second), CellValue(row[kLastReset]),
                                       SqlValue(int64_t{unseen_reset ? 1 : 0}), SqlValue(id)})
                            .status());
      }
      if (unseen_reset) ++result.resets_resolved;
    }
  }
  return result;
}

}  // namespace hsync::reporter
