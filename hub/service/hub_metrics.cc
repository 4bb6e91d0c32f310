#include "hub/service/hub_metrics.h"

#include <string>

#include "common/metric_families.h"
#include "common/proto_time.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::NodeStatus;

// From a fast local panel (a few ms) to the whole-request timeout (20 s).
const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20};
  return buckets;
}

}  // namespace

HubInstruments::HubInstruments() : registry_(std::make_shared<prometheus::Registry>()) {
  parent_requests_ = &prometheus::BuildCounter()
                          .Name("hsync_hub_parent_requests_total")
                          .Help("Requests to the parent panel by kind (list, get, patch, ping) "
                                "and HTTP status (\"none\" = no answer: refused, reset, timeout)")
                          .Register(*registry_);
  parent_request_seconds_ = &prometheus::BuildHistogram()
                                 .Name("hsync_hub_parent_request_duration_seconds")
                                 .Help("Time for one request to the parent panel, by kind")
                                 .Register(*registry_);
  apply_user_seconds_ = &prometheus::BuildHistogram()
                             .Name("hsync_hub_apply_user_duration_seconds")
                             .Help("Time to apply one user's pending bytes to the parent (its GET "
                                   "and PATCH), by result (applied, failed)")
                             .Register(*registry_);
}

void HubInstruments::ParentCall(const ParentCallRecord& call) {
  const std::string kind(call.kind);
  const std::string code = call.http_status == 0 ? "none" : std::to_string(call.http_status);
  parent_requests_->Add({{"kind", kind}, {"code", code}}).Increment();
  parent_request_seconds_->Add({{"kind", kind}}, DurationBuckets())
      .Observe(absl::ToDoubleSeconds(call.duration));
}

void HubInstruments::UserApplied(absl::Duration took, bool applied) {
  apply_user_seconds_->Add({{"result", applied ? "applied" : "failed"}}, DurationBuckets())
      .Observe(absl::ToDoubleSeconds(took));
}

std::vector<prometheus::MetricFamily> HubStatusMetrics(const HubStatus& s, absl::Time now) {
  std::vector<prometheus::MetricFamily> out;
  prometheus::MetricFamily info = GaugeFamily("hsync_hub_info", "Always 1; labels: version");
  AddSample(info, 1, {{"version", s.version()}});
  out.push_back(std::move(info));
  out.push_back(Gauge("hsync_hub_start_time_seconds", "When the hub started (Unix time)",
                      UnixSeconds(s.started_at())));

  // Per node.
  auto reports = CounterFamily("hsync_hub_node_reports_total",
                               "Usage reports accepted and journaled, per node");
  auto duplicates = CounterFamily("hsync_hub_node_duplicate_reports_total",
                                  "Reports acknowledged again without counting (resends), per node");
  auto bytes = CounterFamily("hsync_hub_node_bytes_total",
                             "Bytes of usage accepted from the node (exactly once), per node");
  auto last_report = GaugeFamily("hsync_hub_node_last_report_timestamp_seconds",
                                 "When the node's last report was accepted (Unix time; 0 = never)");
  auto stream_open = GaugeFamily("hsync_hub_node_roster_stream_open",
                                 "1 while the node has a WatchRoster stream open");
  auto version_sent = GaugeFamily("hsync_hub_node_roster_version_sent",
                                  "Highest roster version sent to the node's streams");
  for (const NodeStatus& node : s.nodes()) {
    const MetricLabels labels = {{"node", node.node_id()}};
    AddSample(reports, static_cast<double>(node.reports_accepted()), labels);
    AddSample(duplicates, static_cast<double>(node.duplicates()), labels);
    AddSample(bytes, static_cast<double>(node.bytes_accepted()), labels);
    AddSample(last_report, UnixSeconds(node.last_report_at()), labels);
    AddSample(stream_open, node.roster_stream_open() ? 1 : 0, labels);
    AddSample(version_sent, static_cast<double>(node.roster_version_sent()), labels);
  }
  for (auto* family : {&reports, &duplicates, &bytes, &last_report, &stream_open, &version_sent}) {
    out.push_back(std::move(*family));
  }

  // Journal.
  out.push_back(Gauge("hsync_hub_journal_pending_users",
                      "Users with bytes accepted but not yet written to the parent",
                      static_cast<double>(s.pending_users())));
  out.push_back(Gauge("hsync_hub_journal_pending_bytes",
                      "Bytes accepted but not yet written to the parent",
                      static_cast<double>(s.pending_bytes())));
  out.push_back(Gauge("hsync_hub_journal_reports", "Raw reports kept in the journal (audit)",
                      static_cast<double>(s.journal_reports())));
  out.push_back(Gauge("hsync_hub_journal_audit_bytes",
                      "Payload bytes of the raw reports kept for audit",
                      static_cast<double>(s.audit_bytes())));
  out.push_back(Gauge("hsync_hub_journal_audit_max_bytes",
                      "Ceiling of the audit copy ([journal] audit_max_bytes; 0 = age only)",
                      static_cast<double>(s.audit_max_bytes())));
  out.push_back(Counter("hsync_hub_rollback_refusals_total",
                        "Reports refused since start because their stream and seq were accepted "
                        "before with other content (the reporter's state was rolled back)",
                        static_cast<double>(s.rollback_refusals())));
  out.push_back(Gauge("hsync_hub_journal_oldest_pending_age_seconds",
                      "Age of the oldest pending bytes (0 = nothing pending)",
                      s.pending_users() == 0
                          ? 0
                          : AgeSeconds(FromProtoTimestamp(s.oldest_pending_at()), now)));

  // Applier and parent.
  out.push_back(Counter("hsync_hub_applied_bytes_total", "Bytes written to the parent's usage",
                        static_cast<double>(s.bytes_applied_total())));
  out.push_back(Counter("hsync_hub_patches_total", "Successful usage PATCHes to the parent",
                        static_cast<double>(s.patches_total())));
  out.push_back(Counter("hsync_hub_apply_errors_total",
                        "Failed attempts to apply one user (parent error, garbage, down)",
                        static_cast<double>(s.apply_errors())));
  out.push_back(Gauge("hsync_hub_failing_users", "Users in per-user backoff after failed applies",
                      s.failing_users_size()));
  out.push_back(Gauge("hsync_hub_last_apply_timestamp_seconds",
                      "When the last apply cycle wrote to the parent (Unix time; 0 = never)",
                      UnixSeconds(s.last_apply_at())));
  out.push_back(Gauge("hsync_hub_parent_write_database",
                      "1 when usage is written into the parent's database ([parent] write = "
                      "\"database\"), 0 for the API",
                      s.parent_write_mode() == "database" ? 1 : 0));
  out.push_back(Counter("hsync_hub_batches_applied_total",
                        "Batches applied on the parent's database, one transaction each",
                        static_cast<double>(s.batches_applied())));
  out.push_back(Gauge("hsync_hub_last_batch_timestamp_seconds",
                      "When the last batch was applied on the parent's database (0 = never)",
                      UnixSeconds(s.last_batch_at())));
  out.push_back(Gauge("hsync_hub_last_batch_users", "Users in the last applied batch",
                      s.last_batch_users()));
  out.push_back(Counter("hsync_hub_in_doubt_batches_resolved_total",
                        "Batches left open by a crash or a lost commit answer, settled by their "
                        "id on the parent",
                        static_cast<double>(s.in_doubt_batches_resolved())));
  out.push_back(Counter("hsync_hub_parent_db_errors_total",
                        "Failures of the parent's database (down, no access, wrong schema)",
                        static_cast<double>(s.parent_db_errors())));
  out.push_back(Counter("hsync_hub_core_sync_patches_total",
                        "PATCH {} calls that made the parent's cores follow a user whose "
                        "is_active our writes flipped",
                        static_cast<double>(s.core_sync_patches())));
  out.push_back(Gauge("hsync_hub_core_sync_queued", "Users waiting for a core-sync PATCH {}",
                      static_cast<double>(s.core_sync_queued())));
  out.push_back(Counter("hsync_hub_core_sync_failures_total", "Failed core-sync PATCH {} tries",
                        static_cast<double>(s.core_sync_failures())));
  out.push_back(Gauge("hsync_hub_parent_reachable",
                      "1 when the parent panel answered the last request", s.parent_reachable()));
  out.push_back(Counter("hsync_hub_orphaned_bytes_total",
                        "Bytes for users the parent does not know (counted, never retried)",
                        static_cast<double>(s.orphaned_bytes())));
  out.push_back(Gauge("hsync_hub_orphaned_users", "Users whose bytes were orphaned",
                      static_cast<double>(s.orphaned_users())));
  out.push_back(Gauge("hsync_hub_patch_budget_per_minute",
                      "PATCHes the applier may send to the parent per minute (0 = unlimited)",
                      s.patch_budget_per_minute()));
  out.push_back(Gauge("hsync_hub_patches_last_minute", "PATCHes sent to the parent in the last minute",
                      static_cast<double>(s.patches_last_minute())));
  out.push_back(Gauge("hsync_hub_urgent_users",
                      "Users near their quota in the last apply cycle (applied first)",
                      static_cast<double>(s.urgent_users())));
  out.push_back(Gauge("hsync_hub_budget_deferred_users",
                      "Due users the last apply cycle left for lack of PATCH budget",
                      static_cast<double>(s.budget_deferred_users())));
  out.push_back(Counter("hsync_hub_budget_deferred_total",
                        "Due users left for a later cycle for lack of PATCH budget, summed per cycle",
                        static_cast<double>(s.budget_deferred_total())));

  // Roster.
  out.push_back(Gauge("hsync_hub_roster_version", "Version of the roster the hub serves",
                      static_cast<double>(s.roster_version())));
  out.push_back(Gauge("hsync_hub_roster_users", "Users in the roster",
                      static_cast<double>(s.roster_size())));
  out.push_back(Gauge("hsync_hub_roster_age_seconds",
                      "Time since the roster was last read from the parent",
                      AgeSeconds(FromProtoTimestamp(s.roster_fetched_at()), now)));
  out.push_back(Gauge("hsync_hub_roster_watchers", "Open WatchRoster streams", s.roster_watchers()));
  out.push_back(Gauge("hsync_hub_roster_poll_interval_seconds",
                      "Wait between two reads of the parent's user list now (poll_interval, "
                      "longer while the list is slow)",
                      static_cast<double>(s.roster_poll_interval_effective_ms()) / 1000));
  out.push_back(Gauge("hsync_hub_roster_last_list_seconds",
                      "How long the last read of the parent's user list took",
                      static_cast<double>(s.roster_last_list_ms()) / 1000));
  out.push_back(Gauge("hsync_hub_roster_skipped_users",
                      "Parent users left out of the last roster read because the hub could not "
                      "read them (they keep their previous entry)",
                      s.roster_skipped_users_size()));

  // Authentication.
  out.push_back(Counter("hsync_hub_auth_failures_total", "Failed node authentications",
                        static_cast<double>(s.auth_failures())));
  out.push_back(Counter("hsync_hub_auth_refused_calls_total",
                        "Calls refused unchecked because their address was blocked",
                        static_cast<double>(s.auth_refused_calls())));
  out.push_back(Gauge("hsync_hub_auth_blocked_peers", "Addresses blocked right now",
                      s.auth_blocked_peers()));
  return out;
}

}  // namespace hsync::hub
