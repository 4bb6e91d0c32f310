#include "reporter/outbox/outbox_merger.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::reporter {
namespace {

bool Later(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() != b.seconds() ? a.seconds() > b.seconds() : a.nanos() > b.nanos();
}

struct MergedUsage {
  uint64_t bytes = 0;
  bool has_online = false;
  google::protobuf::Timestamp online;
};

}  // namespace

OutboxMerger::OutboxMerger(StateStore* store, size_t merge_after_rows, size_t max_usages_per_report)
    : store_(store),
      merge_after_rows_(merge_after_rows),
      max_usages_per_report_(std::max<size_t>(1, max_usages_per_report)) {}

absl::StatusOr<OutboxMergeResult> OutboxMerger::MergeIfDue(MariaDbConnection& conn,
                                                           const StreamState& meta,
                                                           uint64_t next_seq) {
  OutboxMergeResult result;
  result.next_seq = next_seq;
  if (merge_after_rows_ == 0) return result;
  ASSIGN_OR_RETURN(uint64_t rows_now, store_->OutboxRows(conn));
  if (rows_now <= merge_after_rows_) return result;
  // The sender claims a row under this lock before it sends it.
  ASSIGN_OR_RETURN(SendProgress progress, store_->LockSendProgress(conn));
  if (progress.stream_id != meta.stream_id) return result;
  ASSIGN_OR_RETURN(std::vector<OutboxRow> unsent,
                   store_->OutboxAbove(conn, meta.stream_id, progress.highest_sent_seq));
  if (unsent.size() < 2) return result;

  std::map<std::string, MergedUsage> users;
  hiddify_sync::v1::UsageReport first;
  google::protobuf::Timestamp collected_at;
  absl::Time oldest = absl::InfiniteFuture();
  for (const OutboxRow& row : unsent) {
    hiddify_sync::v1::UsageReport report;
    if (!report.ParseFromString(row.payload)) {
      // Not ours to repair here; the sender shows it to the operator.
      return absl::DataLossError(absl::StrCat("outbox row seq ", row.seq,
                                              " does not parse as a UsageReport; not merging"));
    }
    if (&row == &unsent.front()) first = report;
    if (Later(report.collected_at(), collected_at)) collected_at = report.collected_at();
    oldest = std::min(oldest, row.created_at);
    for (const auto& usage : report.usages()) {
      MergedUsage& u = users[usage.uuid()];
      u.bytes += usage.bytes();
      if (usage.has_last_online() && (!u.has_online || Later(usage.last_online(), u.online))) {
        u.online = usage.last_online();
        u.has_online = true;
      }
    }
  }
  const size_t rows_needed = (users.size() + max_usages_per_report_ - 1) / max_usages_per_report_;
  if (rows_needed >= unsent.size()) return result;  // nothing to gain (e.g. one huge collect)
  RETURN_IF_ERROR(store_->DeleteOutboxAbove(conn, meta.stream_id, progress.highest_sent_seq));

  result.rows_merged = unsent.size();
  result.first_seq = unsent.front().seq;
  uint64_t seq = result.first_seq;
  auto it = users.begin();
  while (it != users.end()) {
    hiddify_sync::v1::UsageReport report;
    report.set_node_id(first.node_id());
    report.set_stream_id(meta.stream_id);
    report.set_seq(seq);
    *report.mutable_collected_at() = collected_at;
    uint64_t bytes = 0;
    for (; it != users.end() && static_cast<size_t>(report.usages_size()) < max_usages_per_report_;
         ++it) {
      hiddify_sync::v1::UserUsage* u = report.add_usages();
      u->set_uuid(it->first);
      u->set_bytes(it->second.bytes);
      if (it->second.has_online) *u->mutable_last_online() = it->second.online;
      bytes += it->second.bytes;
    }
    OutboxRow row;
    row.stream_id = meta.stream_id;
    row.seq = seq;
    row.bytes = bytes;
    row.created_at = oldest;  // the outbox age keeps counting from the oldest traffic
    if (!report.SerializeToString(&row.payload)) {
      return absl::InternalError("merging the outbox: could not serialize a UsageReport");
    }
    RETURN_IF_ERROR(store_->AppendOutbox(conn, row));
    ++result.rows_written;
    ++seq;
  }
  result.next_seq = seq;
  RETURN_IF_ERROR(store_->CountOutboxMerge(conn));
  return result;
}

}  // namespace hsync::reporter
