#include "reporter/collector.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/panel_time.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "reporter/roster_user_row.h"
#include "reporter/sql_values.h"

namespace hsync::reporter {
namespace {

// Buffers watermark rows and writes them with multi-row upserts.
class WatermarkWriter {
 public:
  WatermarkWriter(MariaDbConnection& conn, std::string table, size_t batch)
      : conn_(conn), table_(std::move(table)), batch_(batch) {}

  absl::Status Add(const std::string& uuid, uint64_t reported, const SqlCell& last_online,
                   const SqlCell& last_reset) {
    if (values_.empty()) {
      values_ = absl::StrCat("INSERT INTO ", table_,
                             " (uuid, reported_bytes, last_online_reported, last_reset_seen) VALUES ");
    } else {
      values_ += ',';
    }
    absl::StrAppend(&values_, "(", conn_.Quote(uuid), ",", reported, ",",
                    last_online ? conn_.Quote(*last_online) : "NULL", ",",
                    last_reset ? conn_.Quote(*last_reset) : "NULL", ")");
    ++written_;
    if (++pending_ >= batch_) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (pending_ == 0) return absl::OkStatus();
    values_ +=
        " ON DUPLICATE KEY UPDATE reported_bytes = VALUES(reported_bytes),"
        " last_online_reported = VALUES(last_online_reported),"
        " last_reset_seen = VALUES(last_reset_seen)";
    absl::Status s = conn_.Execute(values_).status();
    values_.clear();
    pending_ = 0;
    return s;
  }

  uint64_t written() const { return written_; }

 private:
  MariaDbConnection& conn_;
  std::string table_;
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

// Column order of the batch query below.
enum Col {
  kUuid, kCurrent, kLastOnline, kLastReset, kHasMark, kReported, kOnlineReported, kResetSeen
};

// last_online worth reporting: a real time ("0001-01-01 00:00:00" = never),
// not before 2000 and not more than a day ahead (the hub refuses those).
bool Reportable(const SqlCell& last_online, absl::Time now) {
  if (!last_online.has_value() || *last_online < "2000-01-01 00:00:00") return false;
  auto civil = ParsePanelDateTime(*last_online);
  return civil.ok() && absl::FromCivil(*civil, PanelTimeZone()) < now + absl::Hours(23);
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
  const std::string select_head = absl::StrCat(
      "SELECT u.uuid, u.current_usage, u.last_online, u.last_reset_time,"
      " w.uuid IS NOT NULL, w.reported_bytes, w.last_online_reported, w.last_reset_seen"
      " FROM ", user_table, " u LEFT JOIN ", store_->Table("watermark"),
      " w ON w.uuid = u.uuid");
  std::string after;  // last uuid of the previous batch
  bool first_batch = true;
  while (true) {
    std::string sql = select_head;
    if (!first_batch) absl::StrAppend(&sql, " WHERE u.uuid > ", conn.Quote(after));
    absl::StrAppend(&sql, " ORDER BY u.uuid LIMIT ", options_.read_batch);
    auto batch = conn.Query(sql);
    if (!batch.ok()) {
      return absl::Status(
          batch.status().code(),
          absl::StrCat("collect: reading ", user_table, ": ", batch.status().message(),
                       batch.status().code() == absl::StatusCode::kNotFound
                           ? " (is mysql.database right, and the Hiddify panel installed?)"
                           : ""));
    }
    first_batch = false;
    for (const auto& row : batch->rows) {
      ++result.users_scanned;
      const std::string uuid = absl::AsciiStrToLower(CellStr(row[kUuid]));
      if (!IsCanonicalUuid(uuid)) {
        // The hub would refuse the whole report; this row is not ours to fix.
        ++result.users_skipped;
        continue;
      }
      const uint64_t current = CellU64(row[kCurrent]);
      const bool has_mark = CellU64(row[kHasMark]) != 0;
      if (meta.baseline_pending) {
        RETURN_IF_ERROR(marks.Add(uuid, current, row[kLastOnline], row[kLastReset]));
        continue;
      }
      const uint64_t reported = has_mark ? CellU64(row[kReported]) : 0;
      // The panel sets last_reset_time when it zeroes a user's usage; the roster
      // applier moves last_reset_seen along with its own writes of that column.
      const bool reset_differs = has_mark && row[kLastReset] != row[kResetSeen];
      const bool reset_moved = reset_differs && row[kLastReset].has_value();
      const bool reset = has_mark && (current < reported || reset_moved);
      const uint64_t base = reset ? 0 : reported;
      const uint64_t delta = current - base;
      const uint64_t send_bytes = delta >= options_.min_report_bytes && delta > 0 ? delta : 0;
      if (send_bytes == 0 && delta > 0) {
        ++result.users_waiting;
        result.bytes_waiting += delta;
      }
      const bool online_newer = Reportable(row[kLastOnline], now) &&
                                (!row[kOnlineReported].has_value() ||
                                 *row[kLastOnline] > *row[kOnlineReported]);
      if (reset) ++result.resets_detected;
      if (send_bytes > 0 || online_newer) {
        RETURN_IF_ERROR(reports.Add(uuid, send_bytes, online_newer ? row[kLastOnline] : SqlCell()));
        ++result.users_reported;
        result.bytes_reported += send_bytes;
      }
      const uint64_t new_reported = base + send_bytes;
      const SqlCell& new_online = online_newer ? row[kLastOnline] : row[kOnlineReported];
      const bool mark_changed = !has_mark ? (new_reported > 0 || online_newer)
                                          : (new_reported != reported || online_newer || reset_differs);
      if (mark_changed) {
        RETURN_IF_ERROR(marks.Add(uuid, new_reported, new_online, row[kLastReset]));
      }
    }
    if (batch->rows.size() < options_.read_batch) break;
    after = CellStr(batch->rows.back()[kUuid]);
  }
  RETURN_IF_ERROR(marks.Flush());
  RETURN_IF_ERROR(reports.Flush());
  if (meta.baseline_pending) RETURN_IF_ERROR(store_->ClearBaselinePending(conn));
  if (reports.next_seq() != meta.next_seq) RETURN_IF_ERROR(store_->SetNextSeq(conn, reports.next_seq()));
  RETURN_IF_ERROR(tx.Commit());

  result.first_seq = reports.first_seq();
  result.last_seq = reports.last_seq();
  result.watermarks_written = marks.written();
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
