#include "hub/journal/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "hub/journal/journal_background_task.h"
#include "hub/journal/journal_checkpointer.h"
#include "hub/journal/journal_group_commit.h"
#include "hub/journal/journal_report_hash.h"
#include "hub/journal/journal_schema.h"
#include "hub/journal/journal_sqlite.h"

namespace hsync::hub {
namespace {

constexpr int kBusyTimeoutMs = 10'000;
constexpr int kPruneChunkRows = 2000;
// Payload bytes one size-prune operation deletes at most (freeing them reads
// their overflow pages, inside an ingest batch).
constexpr uint64_t kPruneChunkBytes = uint64_t{32} << 20;

constexpr const char* kAppliedBytes = "applied_bytes";
constexpr const char* kOrphanedBytes = "orphaned_bytes";
constexpr const char* kReportsKept = "reports_kept";
constexpr const char* kAuditBytes = "audit_bytes";

std::optional<int64_t> ToMicros(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return std::nullopt;
  return absl::ToUnixMicros(t);
}

absl::Time TimeColumn(const SqliteStatement& stmt, int column) {
  if (stmt.ColumnIsNull(column)) return absl::InfinitePast();
  return absl::FromUnixMicros(stmt.ColumnInt64(column));
}

// Statements of the write connection; used only inside group-commit operations
// (that is, on the writer thread).
struct WriterStatements {
  SqliteStatement select_stream_seq, count_duplicate, upsert_stream, upsert_pending,
      insert_report, add_counter, select_intent, insert_intent, delete_intent,
      select_pending_bytes, subtract_pending, delete_empty_pending, upsert_orphan,
      prune_reports_chunk, select_hash, insert_hash, select_counter, select_oldest_reports,
      delete_reports_through, prune_hashes_chunk, select_batch_of_user, insert_batch,
      insert_batch_user, select_batch, select_batch_users, delete_batch, delete_batch_users,
      restart_pending_age;

  static absl::StatusOr<WriterStatements> Prepare(SqliteDb& db) {
#define HSYNC_PREPARE(name, sql) ASSIGN_OR_RETURN(auto name, db.Prepare(sql))
    HSYNC_PREPARE(select_stream_seq,
                  "SELECT last_seq FROM streams WHERE node_id = ?1 AND stream_id = ?2");
    HSYNC_PREPARE(count_duplicate,
                  "UPDATE streams SET duplicates = duplicates + 1 "
                  "WHERE node_id = ?1 AND stream_id = ?2");
    HSYNC_PREPARE(upsert_stream,
                  "INSERT INTO streams(node_id, stream_id, last_seq, reports, duplicates, bytes, "
                  "last_report_at) VALUES(?1, ?2, ?3, 1, 0, ?4, ?5) "
                  "ON CONFLICT(node_id, stream_id) DO UPDATE SET last_seq = excluded.last_seq, "
                  "reports = reports + 1, bytes = bytes + excluded.bytes, "
                  "last_report_at = excluded.last_report_at");
    // A row exists only while bytes > 0, so first_pending_at of an existing row
    // is still the arrival of its oldest bytes and is left alone.
    HSYNC_PREPARE(upsert_pending,
                  "INSERT INTO pending(uuid, bytes, last_online, first_pending_at) "
                  "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(uuid) DO UPDATE SET "
                  "bytes = bytes + excluded.bytes, "
                  "last_online = CASE WHEN excluded.last_online IS NULL THEN last_online "
                  "WHEN last_online IS NULL OR excluded.last_online > last_online "
                  "THEN excluded.last_online ELSE last_online END");
    HSYNC_PREPARE(insert_report,
                  "INSERT INTO reports(node_id, stream_id, seq, received_at, payload) "
                  "VALUES(?1, ?2, ?3, ?4, ?5)");
    HSYNC_PREPARE(add_counter,
                  "INSERT INTO counters(name, value) VALUES(?1, ?2) "
                  "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
    HSYNC_PREPARE(select_intent, "SELECT bytes_applied FROM intents WHERE uuid = ?1");
    HSYNC_PREPARE(insert_intent,
                  "INSERT INTO intents(uuid, value_read, value_written, bytes_applied, "
                  "created_at) VALUES(?1, ?2, ?3, ?4, ?5)");
    HSYNC_PREPARE(delete_intent, "DELETE FROM intents WHERE uuid = ?1");
    HSYNC_PREPARE(select_pending_bytes, "SELECT bytes FROM pending WHERE uuid = ?1");
    // Bytes left after an apply arrived while its PATCH was under way: they are
    // no older than the intent, so their age restarts there (otherwise the user
    // would look overdue again at once and get a PATCH every cycle).
    HSYNC_PREPARE(subtract_pending,
                  "UPDATE pending SET bytes = bytes - ?2, first_pending_at = max(first_pending_at, "
                  "coalesce((SELECT created_at FROM intents WHERE uuid = ?1), first_pending_at)) "
                  "WHERE uuid = ?1");
    HSYNC_PREPARE(delete_empty_pending, "DELETE FROM pending WHERE uuid = ?1 AND bytes = 0");
    HSYNC_PREPARE(upsert_orphan,
                  "INSERT INTO orphans(uuid, bytes, first_at, last_at) VALUES(?1, ?2, ?3, ?3) "
                  "ON CONFLICT(uuid) DO UPDATE SET bytes = bytes + excluded.bytes, "
                  "last_at = excluded.last_at");
    // Returns each deleted payload's size, for the audit_bytes total.
    HSYNC_PREPARE(prune_reports_chunk,
                  "DELETE FROM reports WHERE id IN (SELECT id FROM reports "
                  "WHERE received_at < ?1 ORDER BY id LIMIT ?2) RETURNING length(payload)");
    HSYNC_PREPARE(select_hash,
                  "SELECT hash FROM report_hashes WHERE node_id = ?1 AND stream_id = ?2 "
                  "AND seq = ?3");
    HSYNC_PREPARE(insert_hash,
                  "INSERT OR REPLACE INTO report_hashes(node_id, stream_id, seq, received_at, "
                  "hash) VALUES(?1, ?2, ?3, ?4, ?5)");
    HSYNC_PREPARE(select_counter, "SELECT value FROM counters WHERE name = ?1");
    // length() of a blob is read from the row header, not from its pages.
    HSYNC_PREPARE(select_oldest_reports,
                  "SELECT id, length(payload) FROM reports ORDER BY id LIMIT ?1");
    HSYNC_PREPARE(delete_reports_through, "DELETE FROM reports WHERE id <= ?1");
    HSYNC_PREPARE(prune_hashes_chunk,
                  "DELETE FROM report_hashes WHERE (node_id, stream_id, seq) IN ("
                  "SELECT h.node_id, h.stream_id, h.seq FROM report_hashes AS h "
                  "JOIN streams AS s ON s.node_id = h.node_id AND s.stream_id = h.stream_id "
                  "WHERE h.received_at < ?1 AND h.seq + ?2 <= s.last_seq LIMIT ?3)");
    HSYNC_PREPARE(select_batch_of_user, "SELECT batch_id FROM batch_users WHERE uuid = ?1");
    HSYNC_PREPARE(insert_batch, "INSERT INTO batches(id, created_at) VALUES(?1, ?2)");
    HSYNC_PREPARE(insert_batch_user,
                  "INSERT INTO batch_users(uuid, batch_id, bytes) VALUES(?1, ?2, ?3)");
    HSYNC_PREPARE(select_batch, "SELECT created_at FROM batches WHERE id = ?1");
    HSYNC_PREPARE(select_batch_users,
                  "SELECT uuid, bytes FROM batch_users WHERE batch_id = ?1 ORDER BY uuid");
    HSYNC_PREPARE(delete_batch, "DELETE FROM batches WHERE id = ?1");
    HSYNC_PREPARE(delete_batch_users, "DELETE FROM batch_users WHERE batch_id = ?1");
    // Bytes left after a batch arrived while it was under way: their age
    // restarts at the batch (as after an intent).
    HSYNC_PREPARE(restart_pending_age,
                  "UPDATE pending SET first_pending_at = max(first_pending_at, ?2) "
                  "WHERE uuid = ?1");
#undef HSYNC_PREPARE
    return WriterStatements{std::move(select_stream_seq), std::move(count_duplicate),
                            std::move(upsert_stream),     std::move(upsert_pending),
                            std::move(insert_report),     std::move(add_counter),
                            std::move(select_intent),     std::move(insert_intent),
                            std::move(delete_intent),     std::move(select_pending_bytes),
                            std::move(subtract_pending),  std::move(delete_empty_pending),
                            std::move(upsert_orphan),     std::move(prune_reports_chunk),
                            std::move(select_hash),       std::move(insert_hash),
                            std::move(select_counter),    std::move(select_oldest_reports),
                            std::move(delete_reports_through), std::move(prune_hashes_chunk),
                            std::move(select_batch_of_user), std::move(insert_batch),
                            std::move(insert_batch_user),  std::move(select_batch),
                            std::move(select_batch_users), std::move(delete_batch),
                            std::move(delete_batch_users), std::move(restart_pending_age)};
  }
};

// Holds an exclusive flock on "<journal>.lock" for the life of the Journal:
// two hubs on one journal would both apply the same pending bytes.
class JournalLock {
 public:
  static absl::StatusOr<JournalLock> Acquire(const std::string& journal_path) {
    const std::string path = journal_path + ".lock";
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("journal: cannot open lock file ", path, ": ", std::strerror(errno)));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      close(fd);
      if (err == EWOULDBLOCK) {
        return absl::FailedPreconditionError(absl::StrCat(
            "journal: ", journal_path, " is in use by another process (another hub running?)"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("journal: cannot lock ", path, ": ", std::strerror(err)));
    }
    return JournalLock(fd);
  }
  JournalLock(JournalLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  JournalLock& operator=(JournalLock&&) = delete;
  ~JournalLock() {
    if (fd_ >= 0) close(fd_);  // releases the flock
  }

 private:
  explicit JournalLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

// One user's delta of an accepted report, kept until the batch commits.
struct BatchDelta {
  std::string_view uuid;
  uint64_t bytes = 0;
  std::optional<int64_t> last_online;
};

struct Journal::Impl {
  JournalLock lock;  // first member: released last
  JournalOptions options;
  SqliteDb write_db;
  SqliteDb read_db;
  std::optional<WriterStatements> w;
  std::mutex read_mu;  // guards read_db (reads are not on the writer thread)
  std::unique_ptr<JournalCheckpointer> checkpointer;
  // Writer thread only: what the batch's accepted reports add, flushed before COMMIT.
  std::vector<BatchDelta> batch_deltas;
  int64_t batch_reports = 0;
  int64_t batch_audit_bytes = 0;

  // The audit size as last known, plus payloads accepted since (may run a
  // little high; only used to decide when to prune, which reads the real total).
  std::atomic<uint64_t> audit_bytes_estimate{0};
  absl::Time last_prune_warning = absl::InfinitePast();  // audit_pruner's thread only

  // Users whose pending row changed since the last TakeChangedPendingUsers().
  std::mutex changed_mu;
  std::unordered_set<std::string> changed_pending;  // guarded by changed_mu

  // Called after the write that changed the users' rows returned (committed).
  template <typename Uuids>
  void NoteChanged(const Uuids& uuids) {
    std::lock_guard<std::mutex> guard(changed_mu);
    for (const auto& uuid : uuids) changed_pending.emplace(uuid);
  }

  std::mutex rollback_mu;
  uint64_t rollback_refusals = 0;                             // guarded by rollback_mu
  std::set<std::pair<std::string, uint64_t>> rollback_logged;  // guarded by rollback_mu

  // Destroyed first (reverse order), so the writer thread stops before the
  // statements, hook and connections it uses go away.
  std::unique_ptr<GroupCommitter> committer;
  // Declared after the committer it uses: stopped before it.
  std::unique_ptr<JournalBackgroundTask> audit_pruner;

  Impl(JournalLock l, JournalOptions o, SqliteDb write, SqliteDb read)
      : lock(std::move(l)), options(o), write_db(std::move(write)), read_db(std::move(read)) {}

  absl::StatusOr<int64_t> Counter(const char* name) {
    SqliteStatement& s = w->select_counter;
    s.BindText(1, name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    const int64_t value = row ? s.ColumnInt64(0) : 0;
    s.Reset();
    return value;
  }

  // The content hash kept for (node, stream, seq), nullopt if none (never
  // kept, or pruned).
  absl::StatusOr<std::optional<std::string>> StoredHash(const std::string& node_id,
                                                        int64_t stream_id, uint64_t seq) {
    SqliteStatement& s = w->select_hash;
    s.BindText(1, node_id);
    s.BindInt64(2, stream_id);
    s.BindInt64(3, ToSqlInt(seq));
    ASSIGN_OR_RETURN(bool row, s.Step());
    std::optional<std::string> hash;
    if (row) hash = s.ColumnBlob(0);
    s.Reset();
    return hash;
  }

  absl::Status AddCounter(const char* name, int64_t delta) {
    w->add_counter.BindText(1, name);
    w->add_counter.BindInt64(2, delta);
    return w->add_counter.Run();
  }

  // Pending bytes of `uuid` (0 when it has no row).
  absl::StatusOr<uint64_t> PendingBytes(const std::string& uuid) {
    SqliteStatement& s = w->select_pending_bytes;
    s.BindText(1, uuid);
    ASSIGN_OR_RETURN(bool row, s.Step());
    uint64_t bytes = row ? FromSqlInt(s.ColumnInt64(0)) : 0;
    s.Reset();
    return bytes;
  }

  // Subtracts `bytes` from the user's pending total (must be there) and drops
  // the row when it reaches 0.
  absl::Status SubtractPending(const std::string& uuid, uint64_t bytes) {
    ASSIGN_OR_RETURN(uint64_t have, PendingBytes(uuid));
    if (have < bytes) {
      return absl::FailedPreconditionError(absl::StrCat(
          "journal: user ", uuid, " has ", have, " pending bytes, cannot take ", bytes));
    }
    w->subtract_pending.BindText(1, uuid);
    w->subtract_pending.BindInt64(2, ToSqlInt(bytes));
    RETURN_IF_ERROR(w->subtract_pending.Run());
    w->delete_empty_pending.BindText(1, uuid);
    return w->delete_empty_pending.Run();
  }

  // bytes_applied of the user's open intent, nullopt if none.
  absl::StatusOr<std::optional<uint64_t>> IntentBytes(const std::string& uuid) {
    SqliteStatement& s = w->select_intent;
    s.BindText(1, uuid);
    ASSIGN_OR_RETURN(bool row, s.Step());
    std::optional<uint64_t> bytes;
    if (row) bytes = FromSqlInt(s.ColumnInt64(0));
    s.Reset();
    return bytes;
  }

  // The open batch the user is in, nullopt if none.
  absl::StatusOr<std::optional<int64_t>> BatchOfUser(const std::string& uuid) {
    SqliteStatement& s = w->select_batch_of_user;
    s.BindText(1, uuid);
    ASSIGN_OR_RETURN(bool row, s.Step());
    std::optional<int64_t> id;
    if (row) id = s.ColumnInt64(0);
    s.Reset();
    return id;
  }

  // FailedPrecondition when the user has an open intent or batch: the parent
  // may hold those bytes already.
  absl::Status RequireNoOpenWrite(const std::string& uuid) {
    ASSIGN_OR_RETURN(std::optional<uint64_t> intent, IntentBytes(uuid));
    if (intent.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("journal: user ", uuid, " has an open intent; resolve it first"));
    }
    ASSIGN_OR_RETURN(std::optional<int64_t> batch, BatchOfUser(uuid));
    if (batch.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "journal: user ", uuid, " is in open batch ", *batch, "; settle it first"));
    }
    return absl::OkStatus();
  }

  // The users of open batch `id` and its creation time; NotFound if not open.
  absl::StatusOr<ApplyBatch> LoadBatch(int64_t id) {
    SqliteStatement& b = w->select_batch;
    b.BindInt64(1, id);
    ASSIGN_OR_RETURN(bool found, b.Step());
    ApplyBatch batch;
    batch.id = id;
    if (found) batch.created_at = absl::FromUnixMicros(b.ColumnInt64(0));
    b.Reset();
    if (!found) return absl::NotFoundError(absl::StrCat("journal: no open batch ", id));
    SqliteStatement& u = w->select_batch_users;
    u.BindInt64(1, id);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, u.Step());
      if (!row) break;
      batch.users.push_back({u.ColumnText(0), FromSqlInt(u.ColumnInt64(1))});
    }
    u.Reset();
    return batch;
  }

  absl::Status DropBatch(int64_t id) {
    w->delete_batch_users.BindInt64(1, id);
    RETURN_IF_ERROR(w->delete_batch_users.Run());
    w->delete_batch.BindInt64(1, id);
    return w->delete_batch.Run();
  }

  // `*rolled_back` is set when the report is refused because its seq was
  // accepted before with other content.
  absl::StatusOr<AcceptResult> AcceptInTransaction(const hiddify_sync::v1::UsageReport& report,
                                                   const std::string& payload,
                                                   const std::string& hash, uint64_t bytes_sum,
                                                   const std::vector<std::optional<int64_t>>& online,
                                                   absl::Time now, bool* rolled_back) {
    const int64_t now_us = absl::ToUnixMicros(now);
    const int64_t stream_id = ToSqlInt(report.stream_id());
    SqliteStatement& sel = w->select_stream_seq;
    sel.BindText(1, report.node_id());
    sel.BindInt64(2, stream_id);
    ASSIGN_OR_RETURN(bool known, sel.Step());
    const uint64_t last_seq = known ? FromSqlInt(sel.ColumnInt64(0)) : 0;
    sel.Reset();

    // Earlier reports of the same batch are already visible here, so a
    // duplicate within one batch is caught too.
    if (report.seq() <= last_seq) {
      if (known) {
        // Looked up only here: an ordinary accept pays nothing for it.
        ASSIGN_OR_RETURN(std::optional<std::string> stored,
                         StoredHash(report.node_id(), stream_id, report.seq()));
        if (stored.has_value() && *stored != hash) {
          *rolled_back = true;
          return absl::AlreadyExistsError(absl::StrCat(
              "stream ", report.stream_id(), " seq ", report.seq(),
              " was accepted before with a different payload: this reporter's state was rolled "
              "back (snapshot or restore); it must start a new stream"));
        }
        w->count_duplicate.BindText(1, report.node_id());
        w->count_duplicate.BindInt64(2, stream_id);
        RETURN_IF_ERROR(w->count_duplicate.Run());
      }
      return AcceptResult{last_seq, true};
    }

    SqliteStatement& st = w->upsert_stream;
    st.BindText(1, report.node_id());
    st.BindInt64(2, stream_id);
    st.BindInt64(3, ToSqlInt(report.seq()));
    st.BindInt64(4, ToSqlInt(bytes_sum));
    st.BindInt64(5, now_us);
    RETURN_IF_ERROR(st.Run());

    SqliteStatement& rep = w->insert_report;
    rep.BindText(1, report.node_id());
    rep.BindInt64(2, stream_id);
    rep.BindInt64(3, ToSqlInt(report.seq()));
    rep.BindInt64(4, now_us);
    rep.BindBlob(5, payload);
    RETURN_IF_ERROR(rep.Run());

    SqliteStatement& h = w->insert_hash;
    h.BindText(1, report.node_id());
    h.BindInt64(2, stream_id);
    h.BindInt64(3, ToSqlInt(report.seq()));
    h.BindInt64(4, now_us);
    h.BindBlob(5, hash);
    RETURN_IF_ERROR(h.Run());

    // Last, so that only a report whose other writes succeeded contributes.
    // The uuids point into `report`, whose caller waits until the batch is over.
    ++batch_reports;
    batch_audit_bytes += static_cast<int64_t>(payload.size());
    for (int i = 0; i < report.usages_size(); ++i) {
      const auto& usage = report.usages(i);
      if (usage.bytes() == 0) continue;  // only users with traffic get a pending row
      batch_deltas.push_back({usage.uuid(), usage.bytes(), online[i]});
    }
    return AcceptResult{report.seq(), false};
  }

  // Before COMMIT: adds the batch's deltas to the pending totals, one upsert
  // per distinct user, in key order (few B-tree descents, no repeats), and
  // its reports to the audit counters (once per batch, not per report).
  // Addition commutes with the intent/orphan subtractions of the same batch.
  absl::Status FlushBatch(absl::Time now) {
    if (batch_reports > 0) {
      RETURN_IF_ERROR(AddCounter(kReportsKept, batch_reports));
      RETURN_IF_ERROR(AddCounter(kAuditBytes, batch_audit_bytes));
    }
    if (batch_deltas.empty()) return absl::OkStatus();
    std::sort(batch_deltas.begin(), batch_deltas.end(),
              [](const BatchDelta& a, const BatchDelta& b) { return a.uuid < b.uuid; });
    const int64_t now_us = absl::ToUnixMicros(now);
    SqliteStatement& up = w->upsert_pending;
    for (size_t i = 0; i < batch_deltas.size();) {
      BatchDelta sum = batch_deltas[i];
      for (++i; i < batch_deltas.size() && batch_deltas[i].uuid == sum.uuid; ++i) {
        sum.bytes += batch_deltas[i].bytes;
        const auto& online = batch_deltas[i].last_online;
        if (online.has_value() && (!sum.last_online.has_value() || *online > *sum.last_online)) {
          sum.last_online = online;
        }
      }
      up.BindText(1, sum.uuid);
      up.BindInt64(2, ToSqlInt(sum.bytes));
      up.BindOptionalInt64(3, sum.last_online);
      up.BindInt64(4, now_us);
      RETURN_IF_ERROR(up.Run());
    }
    return absl::OkStatus();
  }

  void EndBatch() {
    batch_deltas.clear();
    batch_reports = 0;
    batch_audit_bytes = 0;
  }

  void NoteRollbackRefusal(const std::string& node_id, uint64_t stream_id,
                           absl::string_view message) {
    std::lock_guard<std::mutex> lock(rollback_mu);
    ++rollback_refusals;
    if (rollback_logged.emplace(node_id, stream_id).second) {
      LogWarning(absl::StrCat("journal: refused a report of node ", node_id, ": ", message,
                              " (logged once per stream)"));
    }
  }

  // One group-commit operation: deletes the oldest reports (at most
  // kPruneChunkRows / about kPruneChunkBytes) until the audit is at or below
  // `target` bytes. Sets `*done` once it is; `*audit_bytes` is the total
  // afterwards.
  absl::Status PruneOldestChunk(uint64_t target, bool* done, uint64_t* audit_bytes) {
    ASSIGN_OR_RETURN(int64_t total, Counter(kAuditBytes));
    *audit_bytes = FromSqlInt(total);
    if (*audit_bytes <= target) {
      *done = true;
      return absl::OkStatus();
    }
    const uint64_t excess = *audit_bytes - target;
    SqliteStatement& sel = w->select_oldest_reports;
    sel.BindInt64(1, kPruneChunkRows);
    uint64_t freed = 0;
    int64_t rows = 0;
    int64_t last_id = 0;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, sel.Step());
      if (!row) break;
      last_id = sel.ColumnInt64(0);
      freed += FromSqlInt(sel.ColumnInt64(1));
      ++rows;
      if (freed >= excess || freed >= kPruneChunkBytes) break;
    }
    sel.Reset();
    if (rows == 0) {  // the total disagrees with the table: trust the table
      RETURN_IF_ERROR(AddCounter(kAuditBytes, -total));
      *audit_bytes = 0;
      *done = true;
      return absl::OkStatus();
    }
    w->delete_reports_through.BindInt64(1, last_id);
    RETURN_IF_ERROR(w->delete_reports_through.Run());
    RETURN_IF_ERROR(AddCounter(kReportsKept, -rows));
    RETURN_IF_ERROR(AddCounter(kAuditBytes, -ToSqlInt(freed)));
    *audit_bytes -= std::min(freed, *audit_bytes);
    *done = *audit_bytes <= target;
    return absl::OkStatus();
  }

  // Brings the audit below its ceiling (to ~97% of it, so that not every
  // report needs a prune). A no-op without a ceiling.
  absl::Status PruneToSize() {
    const uint64_t max = options.audit_max_bytes;
    if (max == 0) return absl::OkStatus();
    const uint64_t target = max - max / 32;
    for (;;) {
      bool done = false;
      uint64_t audit_bytes = 0;
      RETURN_IF_ERROR(committer->Run([&](absl::Time) -> absl::Status {
        return PruneOldestChunk(target, &done, &audit_bytes);
      }));
      audit_bytes_estimate.store(audit_bytes);
      if (done) return absl::OkStatus();
    }
  }

  // audit_pruner's job.
  void PruneToSizeInBackground() {
    absl::Status status = PruneToSize();
    if (status.ok()) return;
    if (absl::Now() - last_prune_warning < absl::Minutes(1)) return;  // no flood
    last_prune_warning = absl::Now();
    LogWarning(absl::StrCat("journal: pruning the audit copy to audit_max_bytes failed: ",
                            status.ToString()));
  }
};

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& path,
                                                       JournalOptions options) {
  ASSIGN_OR_RETURN(JournalLock lock, JournalLock::Acquire(path));
  ASSIGN_OR_RETURN(SqliteDb write_db, SqliteDb::Open(path, kBusyTimeoutMs));
  RETURN_IF_ERROR(ConfigureJournalConnection(write_db));
  RETURN_IF_ERROR(CreateJournalSchema(write_db));
  ASSIGN_OR_RETURN(SqliteDb read_db, SqliteDb::Open(path, kBusyTimeoutMs));
  RETURN_IF_ERROR(ConfigureJournalConnection(read_db));
  RETURN_IF_ERROR(read_db.Exec("PRAGMA query_only=1"));

  std::unique_ptr<Journal> journal(new Journal());
  journal->impl_ = std::make_unique<Impl>(std::move(lock), options, std::move(write_db),
                                          std::move(read_db));
  Impl& impl = *journal->impl_;
  ASSIGN_OR_RETURN(impl.w, WriterStatements::Prepare(impl.write_db));
  ASSIGN_OR_RETURN(int64_t audit_bytes, impl.Counter(kAuditBytes));
  impl.audit_bytes_estimate.store(FromSqlInt(audit_bytes));
  ASSIGN_OR_RETURN(impl.checkpointer, JournalCheckpointer::Start(path, &impl.write_db));
  GroupCommitter::BatchHooks hooks;
  hooks.before_commit = [&impl](absl::Time now) { return impl.FlushBatch(now); };
  hooks.batch_ended = [&impl] { impl.EndBatch(); };
  ASSIGN_OR_RETURN(impl.committer, GroupCommitter::Start(&impl.write_db, std::move(hooks)));
  impl.audit_pruner =
      JournalBackgroundTask::Start("journal-audit", [&impl] { impl.PruneToSizeInBackground(); });
  // Over the ceiling already (it was lowered, or the journal predates it).
  if (options.audit_max_bytes > 0 && FromSqlInt(audit_bytes) > options.audit_max_bytes) {
    impl.audit_pruner->Poke();
  }
  return journal;
}

Journal::~Journal() = default;

absl::StatusOr<AcceptResult> Journal::Accept(const hiddify_sync::v1::UsageReport& report) {
  // Everything that needs no database is done here, on the caller's thread,
  // to keep the writer's transaction short.
  const std::string payload = report.SerializeAsString();
  const std::string hash = ReportContentHash(report);
  uint64_t bytes_sum = 0;
  std::vector<std::optional<int64_t>> online(report.usages_size());
  for (int i = 0; i < report.usages_size(); ++i) {
    const auto& usage = report.usages(i);
    bytes_sum += usage.bytes();
    if (usage.has_last_online()) online[i] = ToMicros(FromProtoTimestamp(usage.last_online()));
  }

  AcceptResult result;
  bool rolled_back = false;
  absl::Status status = impl_->committer->Run([&](absl::Time now) -> absl::Status {
    ASSIGN_OR_RETURN(result, impl_->AcceptInTransaction(report, payload, hash, bytes_sum, online,
                                                        now, &rolled_back));
    return absl::OkStatus();
  });
  if (rolled_back) {
    impl_->NoteRollbackRefusal(report.node_id(), report.stream_id(), status.message());
  }
  if (status.ok() && !result.duplicate) {
    std::vector<std::string_view> with_bytes;
    with_bytes.reserve(report.usages_size());
    for (const auto& usage : report.usages()) {
      if (usage.bytes() > 0) with_bytes.push_back(usage.uuid());
    }
    impl_->NoteChanged(with_bytes);
  }
  if (!status.ok()) return status;
  const uint64_t max = impl_->options.audit_max_bytes;
  if (!result.duplicate && max > 0 &&
      impl_->audit_bytes_estimate.fetch_add(payload.size()) + payload.size() > max) {
    impl_->audit_pruner->Poke();
  }
  return result;
}

absl::StatusOr<std::vector<PendingUser>> Journal::PendingUsers() {
  std::lock_guard<std::mutex> lock(impl_->read_mu);
  ASSIGN_OR_RETURN(SqliteStatement s,
                   impl_->read_db.Prepare("SELECT uuid, bytes, last_online, first_pending_at "
                                          "FROM pending WHERE bytes > 0 "
                                          "ORDER BY first_pending_at, uuid"));
  std::vector<PendingUser> users;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    PendingUser u;
    u.uuid = s.ColumnText(0);
    u.bytes = FromSqlInt(s.ColumnInt64(1));
    u.last_online = TimeColumn(s, 2);
    u.first_pending_at = TimeColumn(s, 3);
    users.push_back(std::move(u));
  }
  return users;
}

absl::StatusOr<std::vector<PendingUser>> Journal::PendingUsersOf(
    const std::vector<std::string>& uuids) {
  std::vector<PendingUser> users;
  if (uuids.empty()) return users;
  std::lock_guard<std::mutex> lock(impl_->read_mu);
  SqliteDb& db = impl_->read_db;
  RETURN_IF_ERROR(db.Exec("BEGIN"));  // all rows from one moment
  auto read = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(SqliteStatement s,
                     db.Prepare("SELECT bytes, last_online, first_pending_at "
                                "FROM pending WHERE uuid = ?1 AND bytes > 0"));
    for (const std::string& uuid : uuids) {
      s.BindText(1, uuid);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        PendingUser u;
        u.uuid = uuid;
        u.bytes = FromSqlInt(s.ColumnInt64(0));
        u.last_online = TimeColumn(s, 1);
        u.first_pending_at = TimeColumn(s, 2);
        users.push_back(std::move(u));
      }
      s.Reset();
    }
    return absl::OkStatus();
  };
  absl::Status status = read();
  (void)db.Exec("COMMIT");
  if (!status.ok()) return status;
  std::sort(users.begin(), users.end(), [](const PendingUser& a, const PendingUser& b) {
    return std::tie(a.first_pending_at, a.uuid) < std::tie(b.first_pending_at, b.uuid);
  });
  return users;
}

std::vector<std::string> Journal::TakeChangedPendingUsers() {
  std::unordered_set<std::string> taken;
  {
    std::lock_guard<std::mutex> lock(impl_->changed_mu);
    taken.swap(impl_->changed_pending);
  }
  return std::vector<std::string>(std::make_move_iterator(taken.begin()),
                                  std::make_move_iterator(taken.end()));
}

absl::Status Journal::RecordIntent(const ApplyIntent& intent) {
  if (intent.bytes_applied == 0) {
    return absl::InvalidArgumentError("journal: intent with 0 bytes");
  }
  const absl::Time created = intent.created_at == absl::InfinitePast() ||
                                     intent.created_at == absl::Time()
                                 ? absl::Now()
                                 : intent.created_at;
  return impl_->committer->Run([&](absl::Time) -> absl::Status {
    Impl& impl = *impl_;
    ASSIGN_OR_RETURN(std::optional<uint64_t> open, impl.IntentBytes(intent.uuid));
    if (open.has_value()) {
      return absl::AlreadyExistsError(
          absl::StrCat("journal: user ", intent.uuid, " already has an open intent"));
    }
    ASSIGN_OR_RETURN(std::optional<int64_t> batch, impl.BatchOfUser(intent.uuid));
    if (batch.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "journal: user ", intent.uuid, " is in open batch ", *batch, "; settle it first"));
    }
    ASSIGN_OR_RETURN(uint64_t pending, impl.PendingBytes(intent.uuid));
    if (pending < intent.bytes_applied) {
      return absl::FailedPreconditionError(
          absl::StrCat("journal: intent for ", intent.uuid, " applies ", intent.bytes_applied,
                       " bytes but only ", pending, " are pending"));
    }
    SqliteStatement& s = impl.w->insert_intent;
    s.BindText(1, intent.uuid);
    s.BindInt64(2, ToSqlInt(intent.value_read));
    s.BindInt64(3, ToSqlInt(intent.value_written));
    s.BindInt64(4, ToSqlInt(intent.bytes_applied));
    s.BindInt64(5, absl::ToUnixMicros(created));
    return s.Run();
  });
}

absl::Status Journal::CompleteIntent(const std::string& uuid, uint64_t bytes_applied) {
  absl::Status status = impl_->committer->Run([&](absl::Time) -> absl::Status {
    Impl& impl = *impl_;
    // Requiring the intent makes a repeated CompleteIntent harmless: the
    // second call finds no intent and subtracts nothing.
    ASSIGN_OR_RETURN(std::optional<uint64_t> open, impl.IntentBytes(uuid));
    if (!open.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("journal: no open intent for user ", uuid));
    }
    if (*open != bytes_applied) {
      return absl::FailedPreconditionError(absl::StrCat("journal: intent of user ", uuid,
                                                        " applies ", *open, " bytes, not ",
                                                        bytes_applied));
    }
    RETURN_IF_ERROR(impl.SubtractPending(uuid, bytes_applied));
    RETURN_IF_ERROR(impl.AddCounter(kAppliedBytes, ToSqlInt(bytes_applied)));
    impl.w->delete_intent.BindText(1, uuid);
    return impl.w->delete_intent.Run();
  });
  impl_->NoteChanged(std::vector<std::string>{uuid});
  return status;
}

absl::Status Journal::AbandonIntent(const std::string& uuid) {
  return impl_->committer->Run([&](absl::Time) -> absl::Status {
    impl_->w->delete_intent.BindText(1, uuid);
    return impl_->w->delete_intent.Run();
  });
}

absl::StatusOr<std::vector<ApplyIntent>> Journal::OpenIntents() {
  std::lock_guard<std::mutex> lock(impl_->read_mu);
  ASSIGN_OR_RETURN(SqliteStatement s,
                   impl_->read_db.Prepare("SELECT uuid, value_read, value_written, "
                                          "bytes_applied, created_at FROM intents "
                                          "ORDER BY created_at, uuid"));
  std::vector<ApplyIntent> intents;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ApplyIntent i;
    i.uuid = s.ColumnText(0);
    i.value_read = FromSqlInt(s.ColumnInt64(1));
    i.value_written = FromSqlInt(s.ColumnInt64(2));
    i.bytes_applied = FromSqlInt(s.ColumnInt64(3));
    i.created_at = TimeColumn(s, 4);
    intents.push_back(std::move(i));
  }
  return intents;
}

absl::StatusOr<ApplyBatch> Journal::RecordBatch(std::vector<BatchUser> users) {
  if (users.empty()) return absl::InvalidArgumentError("journal: empty batch");
  std::sort(users.begin(), users.end(),
            [](const BatchUser& a, const BatchUser& b) { return a.uuid < b.uuid; });
  for (size_t i = 0; i < users.size(); ++i) {
    if (users[i].bytes == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("journal: batch user ", users[i].uuid, " with 0 bytes"));
    }
    if (i > 0 && users[i].uuid == users[i - 1].uuid) {
      return absl::InvalidArgumentError(
          absl::StrCat("journal: user ", users[i].uuid, " twice in one batch"));
    }
  }
  ApplyBatch batch;
  batch.users = std::move(users);
  absl::BitGen gen;
  batch.id = absl::Uniform<int64_t>(gen, 1, std::numeric_limits<int64_t>::max());
  absl::Status status = impl_->committer->Run([&](absl::Time now) -> absl::Status {
    Impl& impl = *impl_;
    for (const BatchUser& u : batch.users) {
      RETURN_IF_ERROR(impl.RequireNoOpenWrite(u.uuid));
      ASSIGN_OR_RETURN(uint64_t pending, impl.PendingBytes(u.uuid));
      if (pending < u.bytes) {
        return absl::FailedPreconditionError(
            absl::StrCat("journal: batch applies ", u.bytes, " bytes of user ", u.uuid,
                         " but only ", pending, " are pending"));
      }
    }
    batch.created_at = now;
    impl.w->insert_batch.BindInt64(1, batch.id);
    impl.w->insert_batch.BindInt64(2, absl::ToUnixMicros(now));
    RETURN_IF_ERROR(impl.w->insert_batch.Run());
    for (const BatchUser& u : batch.users) {
      SqliteStatement& s = impl.w->insert_batch_user;
      s.BindText(1, u.uuid);
      s.BindInt64(2, batch.id);
      s.BindInt64(3, ToSqlInt(u.bytes));
      RETURN_IF_ERROR(s.Run());
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return batch;
}

absl::Status Journal::CompleteBatch(int64_t id, const std::vector<std::string>& orphaned) {
  const std::set<std::string> orphans(orphaned.begin(), orphaned.end());
  std::vector<std::string> touched;
  absl::Status status = impl_->committer->Run([&](absl::Time now) -> absl::Status {
    Impl& impl = *impl_;
    ASSIGN_OR_RETURN(ApplyBatch batch, impl.LoadBatch(id));
    for (const BatchUser& u : batch.users) touched.push_back(u.uuid);
    const int64_t created_us = absl::ToUnixMicros(batch.created_at);
    int64_t applied = 0;
    int64_t orphaned_bytes = 0;
    for (const BatchUser& u : batch.users) {
      RETURN_IF_ERROR(impl.SubtractPending(u.uuid, u.bytes));
      impl.w->restart_pending_age.BindText(1, u.uuid);
      impl.w->restart_pending_age.BindInt64(2, created_us);
      RETURN_IF_ERROR(impl.w->restart_pending_age.Run());
      if (orphans.count(u.uuid) == 0) {
        applied += ToSqlInt(u.bytes);
        continue;
      }
      SqliteStatement& s = impl.w->upsert_orphan;
      s.BindText(1, u.uuid);
      s.BindInt64(2, ToSqlInt(u.bytes));
      s.BindInt64(3, absl::ToUnixMicros(now));
      RETURN_IF_ERROR(s.Run());
      orphaned_bytes += ToSqlInt(u.bytes);
    }
    if (applied > 0) RETURN_IF_ERROR(impl.AddCounter(kAppliedBytes, applied));
    if (orphaned_bytes > 0) RETURN_IF_ERROR(impl.AddCounter(kOrphanedBytes, orphaned_bytes));
    return impl.DropBatch(id);
  });
  impl_->NoteChanged(touched);
  return status;
}

absl::Status Journal::AbandonBatch(int64_t id) {
  return impl_->committer->Run([&](absl::Time) -> absl::Status { return impl_->DropBatch(id); });
}

absl::StatusOr<std::vector<ApplyBatch>> Journal::OpenBatches() {
  std::lock_guard<std::mutex> lock(impl_->read_mu);
  SqliteDb& db = impl_->read_db;
  RETURN_IF_ERROR(db.Exec("BEGIN"));  // batches and their users from one moment
  auto read = [&]() -> absl::StatusOr<std::vector<ApplyBatch>> {
    ASSIGN_OR_RETURN(SqliteStatement b,
                     db.Prepare("SELECT id, created_at FROM batches ORDER BY created_at, id"));
    std::vector<ApplyBatch> batches;
    std::map<int64_t, size_t> index;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, b.Step());
      if (!row) break;
      ApplyBatch batch;
      batch.id = b.ColumnInt64(0);
      batch.created_at = absl::FromUnixMicros(b.ColumnInt64(1));
      index[batch.id] = batches.size();
      batches.push_back(std::move(batch));
    }
    ASSIGN_OR_RETURN(SqliteStatement u,
                     db.Prepare("SELECT batch_id, uuid, bytes FROM batch_users ORDER BY uuid"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, u.Step());
      if (!row) break;
      auto it = index.find(u.ColumnInt64(0));
      if (it == index.end()) continue;
      batches[it->second].users.push_back({u.ColumnText(1), FromSqlInt(u.ColumnInt64(2))});
    }
    return batches;
  };
  absl::StatusOr<std::vector<ApplyBatch>> batches = read();
  (void)db.Exec("COMMIT");
  return batches;
}

absl::Status Journal::MarkOrphaned(const std::string& uuid, uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("journal: orphaning 0 bytes");
  absl::Status status = impl_->committer->Run([&](absl::Time now) -> absl::Status {
    Impl& impl = *impl_;
    // The write of that intent or batch may have happened; settle it first.
    RETURN_IF_ERROR(impl.RequireNoOpenWrite(uuid));
    RETURN_IF_ERROR(impl.SubtractPending(uuid, bytes));
    SqliteStatement& s = impl.w->upsert_orphan;
    s.BindText(1, uuid);
    s.BindInt64(2, ToSqlInt(bytes));
    s.BindInt64(3, absl::ToUnixMicros(now));
    RETURN_IF_ERROR(s.Run());
    return impl.AddCounter(kOrphanedBytes, ToSqlInt(bytes));
  });
  impl_->NoteChanged(std::vector<std::string>{uuid});
  return status;
}

absl::StatusOr<JournalStats> Journal::Stats() {
  std::lock_guard<std::mutex> lock(impl_->read_mu);
  SqliteDb& db = impl_->read_db;
  JournalStats stats;
  // One read transaction, so the figures are from the same moment.
  RETURN_IF_ERROR(db.Exec("BEGIN"));
  auto read = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(SqliteStatement p,
                     db.Prepare("SELECT count(*), coalesce(sum(bytes), 0), min(first_pending_at) "
                                "FROM pending WHERE bytes > 0"));
    ASSIGN_OR_RETURN(bool row, p.Step());
    if (row) {
      stats.pending_users = FromSqlInt(p.ColumnInt64(0));
      stats.pending_bytes = FromSqlInt(p.ColumnInt64(1));
      stats.oldest_pending_at = TimeColumn(p, 2);
    }
    ASSIGN_OR_RETURN(SqliteStatement c, db.Prepare("SELECT name, value FROM counters"));
    for (;;) {
      ASSIGN_OR_RETURN(bool more, c.Step());
      if (!more) break;
      const std::string name = c.ColumnText(0);
      const uint64_t value = FromSqlInt(c.ColumnInt64(1));
      if (name == kAppliedBytes) stats.bytes_applied_total = value;
      if (name == kOrphanedBytes) stats.orphaned_bytes = value;
      if (name == kReportsKept) stats.reports = value;
      if (name == kAuditBytes) stats.audit_bytes = value;
    }
    ASSIGN_OR_RETURN(SqliteStatement o, db.Prepare("SELECT count(*) FROM orphans"));
    ASSIGN_OR_RETURN(bool orow, o.Step());
    if (orow) stats.orphaned_users = FromSqlInt(o.ColumnInt64(0));
    return absl::OkStatus();
  };
  absl::Status status = read();
  (void)db.Exec("COMMIT");
  if (!status.ok()) return status;
  stats.audit_max_bytes = impl_->options.audit_max_bytes;
  {
    std::lock_guard<std::mutex> rollback_lock(impl_->rollback_mu);
    stats.rollback_refusals = impl_->rollback_refusals;
  }
  return stats;
}

absl::StatusOr<std::vector<StreamState>> Journal::Streams() {
  std::lock_guard<std::mutex> lock(impl_->read_mu);
  ASSIGN_OR_RETURN(SqliteStatement s,
                   impl_->read_db.Prepare("SELECT node_id, stream_id, last_seq, reports, "
                                          "duplicates, bytes, last_report_at FROM streams "
                                          "ORDER BY node_id, last_report_at"));
  std::vector<StreamState> streams;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    StreamState st;
    st.node_id = s.ColumnText(0);
    st.stream_id = FromSqlInt(s.ColumnInt64(1));
    st.last_seq = FromSqlInt(s.ColumnInt64(2));
    st.reports = FromSqlInt(s.ColumnInt64(3));
    st.duplicates = FromSqlInt(s.ColumnInt64(4));
    st.bytes = FromSqlInt(s.ColumnInt64(5));
    st.last_report_at = TimeColumn(s, 6);
    streams.push_back(std::move(st));
  }
  return streams;
}

absl::Status Journal::PruneReports(absl::Duration age) {
  const int64_t cutoff = absl::ToUnixMicros(absl::Now() - age);
  // Small chunks, each its own group-commit operation, so that ingest batches
  // are never stuck behind one huge delete.
  for (;;) {
    int64_t deleted = 0;
    RETURN_IF_ERROR(impl_->committer->Run([&](absl::Time) -> absl::Status {
      Impl& impl = *impl_;
      SqliteStatement& s = impl.w->prune_reports_chunk;
      s.BindInt64(1, cutoff);
      s.BindInt64(2, kPruneChunkRows);
      int64_t freed = 0;
      deleted = 0;
      for (;;) {
        absl::StatusOr<bool> row = s.Step();
        if (!row.ok()) {
          s.Reset();
          return row.status();
        }
        if (!*row) break;
        ++deleted;
        freed += s.ColumnInt64(0);
      }
      s.Reset();
      if (deleted > 0) {
        RETURN_IF_ERROR(impl.AddCounter(kReportsKept, -deleted));
        RETURN_IF_ERROR(impl.AddCounter(kAuditBytes, -freed));
      }
      return absl::OkStatus();
    }));
    if (deleted < kPruneChunkRows) break;
  }
  RETURN_IF_ERROR(impl_->PruneToSize());
  for (;;) {
    int64_t deleted = 0;
    RETURN_IF_ERROR(impl_->committer->Run([&](absl::Time) -> absl::Status {
      SqliteStatement& s = impl_->w->prune_hashes_chunk;
      s.BindInt64(1, cutoff);
      s.BindInt64(2, ToSqlInt(impl_->options.report_hashes_kept_per_stream));
      s.BindInt64(3, kPruneChunkRows);
      RETURN_IF_ERROR(s.Run());
      deleted = impl_->write_db.Changes();
      return absl::OkStatus();
    }));
    if (deleted < kPruneChunkRows) return absl::OkStatus();
  }
}

}  // namespace hsync::hub
