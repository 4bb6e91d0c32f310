#include "hub/apply/database_parent_writer.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "hub/parent/panel_user_row.h"

namespace hsync::hub {
namespace {

using Outcome = UserWriteResult::Outcome;

// Ids of settled batches are kept this long on the parent, pruned this often.
constexpr absl::Duration kAppliedBatchesKept = absl::Hours(24);
constexpr absl::Duration kPruneInterval = absl::Hours(1);

// "'a', 'b', ..." for an IN list.
std::string QuotedList(MariaDbConnection& conn, const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    if (!out.empty()) out.append(", ");
    out.append(conn.Quote(v));
  }
  return out;
}

// The children's last_online as the panel's local text (a child clock running
// ahead may not push it into the future); NULL when unknown.
SqlValue LastOnlineParam(const PendingUser& pending) {
  if (pending.last_online == absl::InfinitePast()) return std::monostate{};
  return FormatPanelDateTime(
      absl::ToCivilSecond(std::min(pending.last_online, absl::Now()), PanelTimeZone()));
}

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

}  // namespace

struct DatabaseParentWriter::ParentOutcome {
  std::vector<std::string> orphaned;            // batch users the parent has no row for
  std::vector<hiddify_sync::v1::User> after;    // the others, as the transaction left them
};

DatabaseParentWriter::DatabaseParentWriter(Journal* journal, std::unique_ptr<ParentDatabase> db,
                                           std::function<absl::CivilDay()> today)
    : journal_(journal), db_(std::move(db)), today_(std::move(today)) {}

absl::Status DatabaseParentWriter::ReadUsers(MariaDbConnection& conn,
                                             const std::vector<std::string>& uuids,
                                             std::vector<hiddify_sync::v1::User>& users) {
  if (uuids.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(ResultSet rows,
                   conn.Query(absl::StrCat("SELECT ", PanelUserColumns(), " FROM `user` WHERE uuid IN (",
                                           QuotedList(conn, uuids), ")")));
  const absl::CivilDay today = today_();
  for (const auto& row : rows.rows) {
    std::string field;
    absl::StatusOr<hiddify_sync::v1::User> user =
        PanelUserFromRow(row, today, db_->default_lang(), &field);
    if (user.ok()) users.push_back(*std::move(user));  // unreadable: the roster read reports it
  }
  return absl::OkStatus();
}

absl::Status DatabaseParentWriter::ApplyOnParent(const ApplyBatch& batch,
                                                 const std::vector<PendingUser>& due,
                                                 ParentOutcome& out, bool* commit_sent) {
  *commit_sent = false;
  ASSIGN_OR_RETURN(MariaDbConnection * conn, db_->Get());
  Transaction tx(*conn);
  RETURN_IF_ERROR(tx.status());
  std::vector<std::string> uuids;
  uuids.reserve(batch.users.size());
  for (const BatchUser& u : batch.users) uuids.push_back(u.uuid);

  // Locks the rows the batch adds to (no one deletes them under us) and
  // tells which users the parent does not have.
  ASSIGN_OR_RETURN(
      ResultSet present,
      conn->Query(absl::StrCat("SELECT uuid FROM `user` WHERE uuid IN (", QuotedList(*conn, uuids),
                               ")", db_->has_deleted_column() ? " AND NOT COALESCE(deleted, 0)" : "",
                               " FOR UPDATE")));
  std::set<std::string> have;
  for (const auto& row : present.rows) {
    if (row[0].has_value()) have.insert(Lower(*row[0]));
  }
  std::vector<std::string> applied_uuids;
  for (const std::string& uuid : uuids) {
    (have.count(Lower(uuid)) > 0 ? applied_uuids : out.orphaned).push_back(uuid);
  }

  // The batch's id first: a transaction of ours that may still commit always
  // holds this row's lock, which Settle's locking read waits for.
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedStatement> mark,
                   conn->Prepare(absl::StrCat("INSERT INTO ", db_->AppliedBatchesTable(),
                                              " (batch_id, applied_at, users, orphaned) "
                                              "VALUES (?, NOW(), ?, ?)")));
  RETURN_IF_ERROR(mark->Execute({batch.id, static_cast<int64_t>(applied_uuids.size()),
                                 absl::StrJoin(out.orphaned, ",")})
                      .status());

  ASSIGN_OR_RETURN(std::unique_ptr<PreparedStatement> add,
                   conn->Prepare("UPDATE `user` SET current_usage = current_usage + ?, "
                                 "last_online = GREATEST(last_online, COALESCE(?, last_online)), "
                                 "start_date = IFNULL(start_date, ?) WHERE uuid = ?"));
  const std::string today = FormatPanelDate(today_());
  std::map<std::string, const PendingUser*> by_uuid;
  for (const PendingUser& p : due) by_uuid[p.uuid] = &p;
  for (const BatchUser& u : batch.users) {
    if (have.count(Lower(u.uuid)) == 0) continue;
    auto it = by_uuid.find(u.uuid);
    SqlValue online = it == by_uuid.end() ? SqlValue(std::monostate{}) : LastOnlineParam(*it->second);
    RETURN_IF_ERROR(add->Execute({u.bytes, online, today, u.uuid}).status());
  }
  RETURN_IF_ERROR(ReadUsers(*conn, applied_uuids, out.after));
  *commit_sent = true;
  return tx.Commit();
}

WriterPass DatabaseParentWriter::Write(const std::vector<PendingUser>& due,
                                       const std::atomic<bool>* /*interrupt*/) {
  WriterPass pass;
  if (due.empty()) return pass;
  std::vector<BatchUser> users;
  users.reserve(due.size());
  for (const PendingUser& p : due) users.push_back({p.uuid, p.bytes});
  const absl::Time start = absl::Now();
  absl::StatusOr<ApplyBatch> batch = journal_->RecordBatch(std::move(users));
  if (!batch.ok()) {
    pass.journal_error = batch.status();
    return pass;
  }
  ParentOutcome out;
  bool commit_sent = false;
  absl::Status applied = ApplyOnParent(*batch, due, out, &commit_sent);
  if (!applied.ok()) {
    db_->Check(applied);
    NoteDbError(applied);
    if (commit_sent && applied.code() == absl::StatusCode::kUnavailable) {
      // The COMMIT went out and its answer was lost: it may have applied.
      // The batch stays open; the next Settle decides it by its id.
      pass.parent_error = absl::Status(
          applied.code(), absl::StrCat("parent database: batch ", batch->id,
                                       " in doubt (commit answer lost), settled next cycle: ",
                                       applied.message()));
      return pass;
    }
    // Rolled back (or never begun): nothing of it is on the parent.
    if (absl::Status dropped = journal_->AbandonBatch(batch->id); !dropped.ok()) {
      pass.journal_error = dropped;
    }
    pass.parent_error = absl::Status(
        applied.code(), absl::StrCat("parent database: batch of ", due.size(),
                                     " user(s) not applied: ", applied.message()));
    return pass;
  }
  if (absl::Status done = journal_->CompleteBatch(batch->id, out.orphaned); !done.ok()) {
    // Applied on the parent; the open batch is completed by the next Settle.
    pass.journal_error = done;
    return pass;
  }
  const absl::Duration took = absl::Now() - start;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.batches_applied;
    stats_.last_batch_at = absl::Now();
    stats_.last_batch_users = static_cast<uint32_t>(batch->users.size());
  }
  std::map<std::string, hiddify_sync::v1::User*> after;
  for (hiddify_sync::v1::User& u : out.after) after[Lower(u.uuid())] = &u;
  const std::set<std::string> orphaned(out.orphaned.begin(), out.orphaned.end());
  for (const BatchUser& u : batch->users) {
    UserWriteResult r;
    r.uuid = u.uuid;
    r.bytes = u.bytes;
    r.took = took;
    r.outcome = orphaned.count(u.uuid) > 0 ? Outcome::kOrphaned : Outcome::kApplied;
    auto it = after.find(Lower(u.uuid));
    if (it != after.end()) r.user_after = std::move(*it->second);
    pass.users.push_back(std::move(r));
  }
  if (absl::Now() - last_prune_ > kPruneInterval) {
    last_prune_ = absl::Now();
    absl::StatusOr<uint64_t> pruned = PruneAppliedBatches(kAppliedBatchesKept);
    if (!pruned.ok()) {
      LogWarning(absl::StrCat("applier: pruning ", db_->AppliedBatchesTable(),
                              " on the parent failed: ", pruned.status().message()));
    }
  }
  return pass;
}

WriterPass DatabaseParentWriter::Settle(absl::Time /*now*/, const UserReadyFn& /*ready*/,
                                        const std::atomic<bool>* interrupt) {
  WriterPass pass;
  absl::StatusOr<std::vector<ApplyBatch>> batches = journal_->OpenBatches();
  if (!batches.ok()) {
    pass.journal_error = batches.status();
    return pass;
  }
  auto unresolved = [&pass](const ApplyBatch& batch) {
    for (const BatchUser& u : batch.users) {
      UserWriteResult r;
      r.uuid = u.uuid;
      r.bytes = u.bytes;
      r.outcome = Outcome::kUnresolved;
      pass.users.push_back(std::move(r));
    }
  };
  for (size_t i = 0; i < batches->size(); ++i) {
    const ApplyBatch& batch = (*batches)[i];
    if (!pass.parent_error.ok() || (interrupt != nullptr && interrupt->load())) {
      unresolved(batch);
      continue;
    }
    const absl::Time start = absl::Now();
    absl::StatusOr<MariaDbConnection*> conn = db_->Get();
    absl::StatusOr<ResultSet> row =
        conn.ok() ? (*conn)->Query(absl::StrCat("SELECT users, orphaned FROM ",
                                                db_->AppliedBatchesTable(), " WHERE batch_id = ",
                                                batch.id, " LOCK IN SHARE MODE"))
                  : absl::StatusOr<ResultSet>(conn.status());
    if (!row.ok()) {
      db_->Check(row.status());
      NoteDbError(row.status());
      pass.parent_error = absl::Status(
          row.status().code(), absl::StrCat("parent database: cannot settle batch ", batch.id,
                                            ": ", row.status().message()));
      unresolved(batch);
      continue;
    }
    const bool applied = !row->rows.empty();
    std::vector<std::string> orphaned;
    if (applied && row->rows[0][1].has_value() && !row->rows[0][1]->empty()) {
      orphaned = absl::StrSplit(*row->rows[0][1], ',');
    }
    std::vector<hiddify_sync::v1::User> after;
    if (applied) {
      std::vector<std::string> uuids;
      for (const BatchUser& u : batch.users) uuids.push_back(u.uuid);
      absl::Status read = ReadUsers(**conn, uuids, after);
      if (!read.ok()) db_->Check(read);  // only the roster fold misses them
    }
    absl::Status recorded = applied ? journal_->CompleteBatch(batch.id, orphaned)
                                    : journal_->AbandonBatch(batch.id);
    if (!recorded.ok()) {
      pass.journal_error = recorded;
      return pass;
    }
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.in_doubt_resolved;
    }
    LogInfo(absl::StrCat("applier: batch ", batch.id, " of ", batch.users.size(),
                         " user(s) left open by a crash or a lost answer: ",
                         applied ? "applied on the parent, marked done"
                                 : "not on the parent, its bytes stay pending"));
    std::map<std::string, hiddify_sync::v1::User*> by_uuid;
    for (hiddify_sync::v1::User& u : after) by_uuid[Lower(u.uuid())] = &u;
    for (const BatchUser& u : batch.users) {
      UserWriteResult r;
      r.uuid = u.uuid;
      r.bytes = u.bytes;
      r.outcome = Outcome::kResolved;
      r.took = absl::Now() - start;
      auto it = by_uuid.find(Lower(u.uuid));
      if (it != by_uuid.end()) r.user_after = std::move(*it->second);
      pass.users.push_back(std::move(r));
    }
  }
  return pass;
}

absl::StatusOr<uint64_t> DatabaseParentWriter::PruneAppliedBatches(absl::Duration age) {
  ASSIGN_OR_RETURN(std::vector<ApplyBatch> open, journal_->OpenBatches());
  std::vector<std::string> keep;
  for (const ApplyBatch& b : open) keep.push_back(absl::StrCat(b.id));
  ASSIGN_OR_RETURN(MariaDbConnection * conn, db_->Get());
  absl::StatusOr<uint64_t> deleted = conn->Execute(absl::StrCat(
      "DELETE FROM ", db_->AppliedBatchesTable(), " WHERE applied_at < NOW() - INTERVAL ",
      absl::ToInt64Seconds(age), " SECOND",
      keep.empty() ? std::string() : absl::StrCat(" AND batch_id NOT IN (", absl::StrJoin(keep, ","), ")")));
  if (!deleted.ok()) db_->Check(deleted.status());
  return deleted;
}

absl::Status DatabaseParentWriter::Ping() {
  absl::StatusOr<MariaDbConnection*> conn = db_->Get();
  if (!conn.ok()) {
    NoteDbError(conn.status());
    return conn.status();
  }
  if ((*conn)->Ping()) return absl::OkStatus();
  db_->Drop();
  absl::Status down = absl::UnavailableError("parent database: the server does not answer");
  NoteDbError(down);
  return down;
}

void DatabaseParentWriter::NoteDbError(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  ++stats_.db_errors;
  stats_.last_db_error = std::string(status.message());
  stats_.last_db_error_at = absl::Now();
}

DatabaseWriterStats DatabaseParentWriter::Stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

bool DatabaseParentWriter::IsUnreachable(const absl::Status& status) const {
  return status.code() == absl::StatusCode::kUnavailable;
}

}  // namespace hsync::hub
