#include "hub/service/hub_status.h"

#include <algorithm>
#include <set>

#include "common/proto_time.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::NodeStatus;

// Sets the field (obtained from `mutable_field()`, which creates it) only for
// a known time, so "never" stays unset on the wire.
template <typename MutableField>
void SetTime(absl::Time t, MutableField mutable_field) {
  if (t != absl::InfinitePast() && t != absl::InfiniteFuture()) *mutable_field() = ToProtoTimestamp(t);
}

void FillNodes(const HubStatusInputs& in, HubStatus* out) {
  std::set<std::string> ids(in.configured_nodes.begin(), in.configured_nodes.end());
  for (const StreamState& stream : in.streams) ids.insert(stream.node_id);
  for (const auto& [id, live] : in.live) ids.insert(id);
  for (const std::string& id : ids) {
    NodeStatus* node = out->add_nodes();
    node->set_node_id(id);
    const StreamState* latest = nullptr;
    uint64_t reports = 0;
    uint64_t duplicates = 0;
    uint64_t bytes = 0;
    for (const StreamState& stream : in.streams) {
      if (stream.node_id != id) continue;
      reports += stream.reports;
      duplicates += stream.duplicates;
      bytes += stream.bytes;
      if (latest == nullptr || stream.last_report_at > latest->last_report_at) latest = &stream;
    }
    if (latest != nullptr) {
      SetTime(latest->last_report_at, [&] { return node->mutable_last_report_at(); });
      node->set_stream_id(latest->stream_id);
      node->set_last_seq(latest->last_seq);
    }
    node->set_reports_accepted(reports);
    node->set_duplicates(duplicates);
    node->set_bytes_accepted(bytes);
    if (auto it = in.live.find(id); it != in.live.end()) {
      node->set_roster_stream_open(it->second.open_roster_streams > 0);
      node->set_roster_version_sent(it->second.roster_version_sent);
    }
  }
}

void FillParent(const HubStatusInputs& in, HubStatus* out) {
  // The latest word about the parent from either of its two users.
  const absl::Time applier_error_at = in.applier.last_parent_error_at;
  const absl::Time poller_error_at = in.poller.last_error_at;
  if (applier_error_at >= poller_error_at && !in.applier.last_parent_error.empty()) {
    out->set_last_parent_error(in.applier.last_parent_error);
    SetTime(applier_error_at, [&] { return out->mutable_last_parent_error_at(); });
  } else if (!in.poller.last_error.empty()) {
    out->set_last_parent_error(in.poller.last_error);
    SetTime(poller_error_at, [&] { return out->mutable_last_parent_error_at(); });
  }
  // Reachable when the most recent contact (success or failure) succeeded.
  const absl::Time poller_seen = std::max(in.poller.last_attempt_at, in.poller.last_success_at);
  const absl::Time applier_seen = std::max(in.applier.last_apply_at, applier_error_at);
  if (in.poller.last_attempt_at == absl::InfinitePast()) {
    out->set_parent_reachable(in.applier.parent_reachable);
  } else if (applier_seen > poller_seen) {
    out->set_parent_reachable(in.applier.parent_reachable);
  } else {
    out->set_parent_reachable(in.poller.last_ok);
  }
}

}  // namespace

HubStatus BuildHubStatus(const HubStatusInputs& in) {
  HubStatus out;
  out.set_version(in.version);
  SetTime(in.started_at, [&] { return out.mutable_started_at(); });
  FillNodes(in, &out);

  out.set_pending_users(in.journal.pending_users);
  out.set_pending_bytes(in.journal.pending_bytes);
  out.set_journal_reports(in.journal.reports);
  out.set_audit_reports(in.journal.reports);
  out.set_audit_bytes(in.journal.audit_bytes);
  out.set_audit_max_bytes(in.journal.audit_max_bytes);
  out.set_rollback_refusals(in.journal.rollback_refusals);
  out.set_parent_write_mode(in.parent_write_mode);
  out.set_batches_applied(in.database_writer.batches_applied);
  SetTime(in.database_writer.last_batch_at, [&] { return out.mutable_last_batch_at(); });
  out.set_last_batch_users(in.database_writer.last_batch_users);
  out.set_in_doubt_batches_resolved(in.database_writer.in_doubt_resolved);
  out.set_parent_db_errors(in.database_writer.db_errors);
  out.set_last_parent_db_error(in.database_writer.last_db_error);
  out.set_core_sync_patches(in.core_sync.patches);
  out.set_core_sync_queued(in.core_sync.queued);
  out.set_core_sync_failures(in.core_sync.failures);
  SetTime(in.journal.oldest_pending_at, [&] { return out.mutable_oldest_pending_at(); });

  SetTime(in.applier.last_apply_at, [&] { return out.mutable_last_apply_at(); });
  out.set_bytes_applied_total(in.journal.bytes_applied_total);
  out.set_patches_total(in.applier.patches_total);
  for (const FailingUserInfo& failing : in.applier.failing_users) {
    hiddify_sync::v1::FailingUser* user = out.add_failing_users();
    user->set_uuid(failing.uuid);
    user->set_pending_bytes(failing.pending_bytes);
    user->set_consecutive_failures(failing.consecutive_failures);
    user->set_last_error(failing.last_error);
    SetTime(failing.next_attempt_at, [&] { return user->mutable_next_attempt_at(); });
  }
  FillParent(in, &out);

  out.set_roster_version(in.roster_version);
  out.set_roster_size(in.roster_size);
  SetTime(in.roster_fetched_at, [&] { return out.mutable_roster_fetched_at(); });
  out.set_roster_watchers(in.roster_watchers);
  out.set_roster_epoch(in.roster_store.epoch);
  out.set_roster_history_bytes(in.roster_store.history_bytes);
  out.set_roster_history_max_bytes(in.roster_store.history_max_bytes);
  out.set_roster_history_oldest_version(in.roster_store.history_oldest_version);
  out.set_roster_usage_pending(in.roster_store.usage_pending);
  out.set_roster_usage_interval_seconds(
      static_cast<uint64_t>(absl::ToInt64Seconds(in.roster_store.usage_interval)));
  out.set_roster_full_sent(in.roster_streams.full_sent);
  out.set_roster_deltas_sent(in.roster_streams.deltas_sent);
  out.set_roster_bytes_sent(in.roster_streams.bytes_sent);
  out.set_roster_resumed_streams(in.roster_streams.resumed);
  for (const SkippedPanelUser& skipped : in.poller.skipped_users) {
    hiddify_sync::v1::SkippedUser* user = out.add_roster_skipped_users();
    user->set_uuid(skipped.uuid);
    user->set_reason(skipped.reason);
  }

  out.set_orphaned_bytes(in.journal.orphaned_bytes);
  out.set_orphaned_users(in.journal.orphaned_users);
  out.set_auth_failures(in.auth_failures);
  out.set_auth_refused_calls(in.auth_refused_calls);
  out.set_auth_blocked_peers(in.auth_blocked_peers);
  out.set_apply_errors(in.applier.apply_errors);

  out.set_roster_poll_interval_effective_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(in.poller.effective_interval)));
  out.set_roster_last_list_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(in.poller.last_list_duration)));
  const ApplySchedulerStats& schedule = in.applier.schedule;
  out.set_patch_budget_per_minute(schedule.writes_per_minute_budget);
  out.set_patches_last_minute(schedule.writes_last_minute);
  out.set_urgent_users(schedule.urgent_due);
  out.set_budget_deferred_users(schedule.deferred_by_budget);
  out.set_budget_deferred_total(schedule.deferred_by_budget_total);
  return out;
}

}  // namespace hsync::hub
