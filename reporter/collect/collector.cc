#include "reporter/collect/collector.h"

#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/panel_time.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "reporter/outbox/outbox_merger.h"
#include "reporter/roster/roster_user_row.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {
namespace {

// Buffers watermark rows and writes them with multi-row upserts.
class WatermarkWriter {
 public:
  WatermarkWriter(MariaDbConnection& conn, std::string table, size_t batch)
      : conn_(conn), table_(std::move(table)), batch_(batch) {}

  absl::Status Add(int64_t user_id, const std::string& uuid, uint64_t reported,
                   const SqlCell& last_online, const SqlCell& last_reset, uint64_t unsubtracted) {
    if (values_.empty()) {
      values_ = absl::StrCat("INSERT INTO ", table_,
                             " (user_id, uuid, reported_bytes, last_online_reported, last_reset_seen,"
                             " unsubtracted_bytes) VALUES ");
    } else {
      values_ += ',';
    }
    absl::StrAppend(&values_, "(", user_id, ",", conn_.Quote(uuid), ",", reported, ",",
                    last_online ? conn_.Quote(*last_online) : "NULL", ",",
                    last_reset ? conn_.Quote(*last_reset) : "NULL", ",", unsubtracted, ")");
    ++written_;
    if (++pending_ >= batch_) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (pending_ == 0) return absl::OkStatus();
    values_ +=
        " ON DUPLICATE KEY UPDATE uuid = VALUES(uuid), reported_bytes = VALUES(reported_bytes),"
        " last_online_reported = VALUES(last_online_reported),"
        " last_reset_seen = VALUES(last_reset_seen),"
        " unsubtracted_bytes = VALUES(unsubtracted_bytes)";
    const absl::Time started = absl::Now();
    absl::Status s = conn_.Execute(values_).status();
    time_ += absl::Now() - started;
    values_.clear();
    pending_ = 0;
    return s;
  }

  uint64_t written() const { return written_; }
  absl::Duration time() const { return time_; }

 private:
  MariaDbConnection& conn_;
  std::string table_;
  absl::Duration time_;
  size_t batch_;
  std::string values_;
  size_t pending_ = 0;
  uint64_t written_ = 0;
};

// Accumulates usages into reports of bounded size, each written to the
// outbox with the next seq.
class ReportWriter {
 public:
  ReportWriter(MariaDbConnection& conn, StateStore& store, const CollectOptions& options,
               uint64_t stream_id, uint64_t next_seq, absl::Time now)
      : conn_(conn), store_(store), options_(options), stream_id_(stream_id),
        next_seq_(next_seq), now_(now) {}

  absl::Status Add(const std::string& uuid, uint64_t bytes, const SqlCell& last_online) {
    hiddify_sync::v1::UserUsage* u = report_.add_usages();
    u->set_uuid(uuid);
    u->set_bytes(bytes);
    if (last_online.has_value()) {
      auto civil = ParsePanelDateTime(*last_online);
      if (civil.ok()) {
        *u->mutable_last_online() = ToProtoTimestamp(absl::FromCivil(*civil, PanelTimeZone()));
      }
    }
    report_bytes_ += bytes;
    if (static_cast<size_t>(report_.usages_size()) >= options_.max_usages_per_report) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (report_.usages_size() == 0) return absl::OkStatus();
    report_.set_node_id(options_.node_id);
    report_.set_stream_id(stream_id_);
    report_.set_seq(next_seq_);
    *report_.mutable_collected_at() = ToProtoTimestamp(now_);
    OutboxRow row;
    row.stream_id = stream_id_;
    row.seq = next_seq_;
    row.bytes = report_bytes_;
    row.created_at = now_;
    if (!report_.SerializeToString(&row.payload)) {
      return absl::InternalError("collect: could not serialize a UsageReport");
    }
    RETURN_IF_ERROR(store_.AppendOutbox(conn_, row));
    if (first_seq_ == 0) first_seq_ = next_seq_;
    last_seq_ = next_seq_++;
    report_.Clear();
    report_bytes_ = 0;
    return absl::OkStatus();
  }

  uint64_t next_seq() const { return next_seq_; }
  uint64_t first_seq() const { return first_seq_; }
  uint64_t last_seq() const { return last_seq_; }

 private:
  MariaDbConnection& conn_;
  StateStore& store_;
  const CollectOptions& options_;
  uint64_t stream_id_;
  uint64_t next_seq_;
  absl::Time now_;
  hiddify_sync::v1::UsageReport report_;
  uint64_t report_bytes_ = 0;
  uint64_t first_seq_ = 0;
  uint64_t last_seq_ = 0;
};

// Column order of the two batch queries below.
enum UserCol { kId, kUuid, kCurrent, kLastOnline, kLastReset };
enum MarkCol { kMarkUserId, kMarkUuid, kMarkReported, kMarkOnline, kMarkResetSeen, kMarkUnsubtracted };

// last_online worth reporting: a real time ("0001-01-01 00:00:00" = never),
// not before 2000 and not more than a day ahead (the hub refuses those).
// Compared as text ("YYYY-MM-DD HH:MM:SS" sorts like time); `latest` is
// now + 23 h in the panel's format.
bool Reportable(const SqlCell& last_online, const std::string& latest) {
  return last_online.has_value() && last_online->size() == 19 &&
         *last_online >= "2000-01-01 00:00:00" && *last_online < latest;
}

}  // namespace

Collector::Collector(StateStore* store, CollectOptions options)
    : store_(store), options_(std::move(options)) {}

absl::StatusOr<CollectResult> Collector::CollectOnce(MariaDbConnection& conn, absl::Time now) {
  Transaction tx(conn);
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(StreamState meta, store_->LockMeta(conn));

  CollectResult result;
  result.stream_id = meta.stream_id;
  result.baselined = meta.baseline_pending;
  WatermarkWriter marks(conn, store_->Table("watermark"), options_.upsert_batch);
  ReportWriter reports(conn, *store_, options_, meta.stream_id, meta.next_seq, now);

  const std::string user_table = absl::StrCat("`", options_.panel_database, "`.`user`");
  const std::string mark_table = store_->Table("watermark");
  // Users and watermarks are read in batches along the users' primary key and
  // merged here: two sequential range scans of clustered indexes, no per-row
  // lookups. All batches read the transaction's one snapshot.
  const std::string latest_online =
      FormatPanelDateTime(absl::ToCivilSecond(now + absl::Hours(23), PanelTimeZone()));
  int64_t after_id = std::numeric_limits<int64_t>::min();
  std::vector<int64_t> orphans;  // watermarks of users that no longer exist
  while (true) {
    const absl::Time read_started = absl::Now();
    auto users = conn.Query(absl::StrCat(
        "SELECT id, uuid, current_usage, last_online, last_reset_time FROM ", user_table,
        " WHERE id > ", after_id, " ORDER BY id LIMIT ", options_.read_batch));
    if (!users.ok()) {
      return absl::Status(
          users.status().code(),
          absl::StrCat("collect: reading ", user_table, ": ", users.status().message(),
                       users.status().code() == absl::StatusCode::kNotFound
                           ? " (is mysql.database right, and the Hiddify panel installed?)"
                           : ""));
    }
    const bool last_batch = users->rows.size() < options_.read_batch;
    std::string mark_sql = absl::StrCat(
        "SELECT user_id, uuid, reported_bytes, last_online_reported, last_reset_seen,"
        " unsubtracted_bytes FROM ",
        mark_table, " WHERE user_id > ", after_id);
    if (!last_batch) absl::StrAppend(&mark_sql, " AND user_id <= ", CellI64(users->rows.back()[kId]));
    absl::StrAppend(&mark_sql, " ORDER BY user_id");
    ASSIGN_OR_RETURN(ResultSet mark_rows, conn.Query(mark_sql));
    result.read_time += absl::Now() - read_started;

    size_t m = 0;
    for (const auto& row : users->rows) {
      const int64_t id = CellI64(row[kId]);
      while (m < mark_rows.rows.size() && CellI64(mark_rows.rows[m][kMarkUserId]) < id) {
        orphans.push_back(CellI64(mark_rows.rows[m++][kMarkUserId]));
      }
      const std::vector<SqlCell>* mark = nullptr;
      if (m < mark_rows.rows.size() && CellI64(mark_rows.rows[m][kMarkUserId]) == id) {
        mark = &mark_rows.rows[m++];
      }
      ++result.users_scanned;
      const std::string& raw_uuid = *row[kUuid];  // NOT NULL column
      const std::string uuid = IsCanonicalUuid(raw_uuid) ? raw_uuid : absl::AsciiStrToLower(raw_uuid);
      if (!IsCanonicalUuid(uuid)) {
        // The hub would refuse the whole report; this row is not ours to fix.
        ++result.users_skipped;
        continue;
      }
      // A watermark of another uuid (the id was reused) does not count.
      if (mark != nullptr && CellStr((*mark)[kMarkUuid]) != uuid) mark = nullptr;
      const uint64_t current = CellU64(row[kCurrent]);
      if (meta.baseline_pending) {
        RETURN_IF_ERROR(marks.Add(id, uuid, current, row[kLastOnline], row[kLastReset], 0));
        continue;
      }
      const bool has_mark = mark != nullptr;
      static const SqlCell kNull;
      const SqlCell& online_reported = has_mark ? (*mark)[kMarkOnline] : kNull;
      const SqlCell& reset_seen = has_mark ? (*mark)[kMarkResetSeen] : kNull;
      const uint64_t reported = has_mark ? CellU64((*mark)[kMarkReported]) : 0;
      const uint64_t unsubtracted = has_mark ? CellU64((*mark)[kMarkUnsubtracted]) : 0;
      // The panel sets last_reset_time when it zeroes a user's usage; the roster
      // applier moves last_reset_seen along with its own writes of that column.
      const bool reset_differs = has_mark && row[kLastReset] != reset_seen;
      const bool reset_moved = reset_differs && row[kLastReset].has_value();
      const bool reset = has_mark && (current < reported || reset_moved);
      const uint64_t base = reset ? 0 : reported;
      const uint64_t delta = current - base;
      const uint64_t send_bytes = delta >= options_.min_report_bytes && delta > 0 ? delta : 0;
      if (send_bytes == 0 && delta > 0) {
        ++result.users_waiting;
        result.bytes_waiting += delta;
      }
      const bool online_newer = (!online_reported.has_value() || *row[kLastOnline] > *online_reported) &&
                                Reportable(row[kLastOnline], latest_online);
      if (reset) ++result.resets_detected;
      if (send_bytes > 0 || online_newer) {
        RETURN_IF_ERROR(reports.Add(uuid, send_bytes, online_newer ? row[kLastOnline] : SqlCell()));
        ++result.users_reported;
        result.bytes_reported += send_bytes;
      }
      const uint64_t new_reported = base + send_bytes;
      // A reset took everything reported before it out of current_usage.
      const uint64_t new_unsubtracted = (reset ? 0 : unsubtracted) + send_bytes;
      const SqlCell& new_online = online_newer ? row[kLastOnline] : online_reported;
      const bool mark_changed = !has_mark ? (new_reported > 0 || online_newer)
                                          : (new_reported != reported || online_newer || reset_differs);
      if (mark_changed) {
        RETURN_IF_ERROR(
            marks.Add(id, uuid, new_reported, new_online, row[kLastReset], new_unsubtracted));
      }
    }
    for (; m < mark_rows.rows.size(); ++m) orphans.push_back(CellI64(mark_rows.rows[m][kMarkUserId]));
    if (last_batch) break;
    after_id = CellI64(users->rows.back()[kId]);
  }
  RETURN_IF_ERROR(marks.Flush());
  for (size_t start = 0; start < orphans.size(); start += options_.upsert_batch) {
    std::string ids;
    for (size_t i = start; i < std::min(orphans.size(), start + options_.upsert_batch); ++i) {
      absl::StrAppend(&ids, ids.empty() ? "" : ",", orphans[i]);
    }
    RETURN_IF_ERROR(conn.Execute(absl::StrCat("DELETE FROM ", mark_table, " WHERE user_id IN (", ids, ")"))
                        .status());
  }
  result.watermarks_dropped = orphans.size();
  RETURN_IF_ERROR(reports.Flush());
  if (meta.baseline_pending) RETURN_IF_ERROR(store_->ClearBaselinePending(conn));
  uint64_t next_seq = reports.next_seq();
  result.first_seq = reports.first_seq();
  result.last_seq = reports.last_seq();
  if (result.last_seq > 0) {
    OutboxMerger merger(store_, options_.merge_after_rows, options_.max_usages_per_report);
    ASSIGN_OR_RETURN(OutboxMergeResult merged, merger.MergeIfDue(conn, meta, next_seq));
    if (merged.rows_merged > 0) {
      next_seq = merged.next_seq;
      result.rows_merged = merged.rows_merged;
      result.merged_into = merged.rows_written;
      result.first_seq = merged.first_seq;
      result.last_seq = next_seq - 1;
    }
  }
  if (next_seq != meta.next_seq) RETURN_IF_ERROR(store_->SetNextSeq(conn, next_seq));
  RETURN_IF_ERROR(tx.Commit());

  result.watermarks_written = marks.written();
  result.write_time = marks.time();
  if (result.users_skipped > 0) {
    LogWarning(absl::StrCat("collect: skipped ", result.users_skipped,
                            " users whose uuid is not a lower-case canonical uuid"));
  }
  if (result.baselined) {
    LogInfo(absl::StrCat("collect: baseline recorded for ", result.users_scanned,
                         " users (their existing usage counts as already reported)"));
  }
  return result;
}

}  // namespace hsync::reporter
