#include "reporter/status/reporter_metrics.h"

#include <algorithm>

#include "common/metric_families.h"
#include "common/proto_time.h"

namespace hsync::reporter {
namespace {

using hiddify_sync::v1::ReporterStatusReply;

}  // namespace

ReporterInstruments::ReporterInstruments() : registry_(std::make_shared<prometheus::Registry>()) {
  // A collect reads every user row once: milliseconds for hundreds of users,
  // about a second for 100,000.
  collect_seconds_ = &prometheus::BuildHistogram()
                          .Name("hsync_reporter_collect_duration_seconds")
                          .Help("Time for one collect (read usage, write the outbox)")
                          .Register(*registry_)
                          .Add({}, prometheus::Histogram::BucketBoundaries{
                                       0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  collect_failures_ = &prometheus::BuildCounter()
                           .Name("hsync_reporter_collect_failures_total")
                           .Help("Collects that failed (MariaDB unreachable, state missing)")
                           .Register(*registry_)
                           .Add({});
  collected_bytes_ = &prometheus::BuildCounter()
                          .Name("hsync_reporter_collected_bytes_total")
                          .Help("Bytes of usage written to the outbox for the hub")
                          .Register(*registry_)
                          .Add({});
  collected_usages_ = &prometheus::BuildCounter()
                           .Name("hsync_reporter_collected_usages_total")
                           .Help("Per-user usage entries written to the outbox")
                           .Register(*registry_)
                           .Add({});
}

void ReporterInstruments::CollectFinished(absl::Duration took, bool ok, uint64_t bytes,
                                          uint64_t users) {
  collect_seconds_->Observe(absl::ToDoubleSeconds(took));
  if (!ok) {
    collect_failures_->Increment();
    return;
  }
  collected_bytes_->Increment(static_cast<double>(bytes));
  collected_usages_->Increment(static_cast<double>(users));
}

std::vector<prometheus::MetricFamily> ReporterStatusMetrics(const ReporterStatusReply& s,
                                                            absl::Time now) {
  std::vector<prometheus::MetricFamily> out;
  prometheus::MetricFamily info = GaugeFamily("hsync_reporter_info", "Always 1; labels: version, node");
  AddSample(info, 1, {{"version", s.version()}, {"node", s.node_id()}});
  out.push_back(std::move(info));
  out.push_back(Gauge("hsync_reporter_start_time_seconds", "When the reporter started (Unix time)",
                      UnixSeconds(s.started_at())));

  // Hub.
  out.push_back(Gauge("hsync_reporter_hub_connected", "1 while the gRPC channel to the hub is up",
                      s.hub_connected()));
  out.push_back(Gauge("hsync_reporter_roster_stream_open", "1 while the WatchRoster stream is open",
                      s.roster_stream_open()));
  out.push_back(Gauge("hsync_reporter_last_ack_timestamp_seconds",
                      "When the hub last acknowledged a report (Unix time; 0 = never)",
                      UnixSeconds(s.last_ack_at())));

  // Collect and outbox.
  out.push_back(Gauge("hsync_reporter_last_collect_timestamp_seconds",
                      "When the last successful collect started (Unix time; 0 = never)",
                      UnixSeconds(s.last_collect_at())));
  out.push_back(Gauge("hsync_reporter_last_seq_written", "Sequence number of the newest report",
                      static_cast<double>(s.last_seq_written())));
  out.push_back(Gauge("hsync_reporter_last_seq_acked",
                      "Sequence number of the newest report the hub acknowledged",
                      static_cast<double>(s.last_seq_acked())));
  out.push_back(Gauge("hsync_reporter_outbox_reports",
                      "Reports written but not yet acknowledged by the hub",
                      static_cast<double>(s.outbox_reports())));
  out.push_back(Gauge("hsync_reporter_outbox_bytes", "Bytes in reports not yet acknowledged",
                      static_cast<double>(s.outbox_bytes())));
  out.push_back(Gauge("hsync_reporter_outbox_oldest_age_seconds",
                      "Age of the oldest unacknowledged report (0 = outbox empty)",
                      s.outbox_reports() == 0
                          ? 0
                          : AgeSeconds(FromProtoTimestamp(s.outbox_oldest_at()), now)));

  out.push_back(Counter("hsync_reporter_stream_restarts_total",
                        "New streams started because the hub was ahead of this reporter's state "
                        "(rolled back by a VM snapshot or backup restore); no bytes were dropped",
                        static_cast<double>(s.stream_restarts())));
  out.push_back(Counter("hsync_reporter_outbox_merges_total",
                        "Times the reports never sent were merged into one while the hub was away",
                        static_cast<double>(s.outbox_merges())));

  // Roster.
  out.push_back(Gauge("hsync_reporter_roster_version_applied",
                      "Roster version last applied to the child panel",
                      static_cast<double>(s.roster_version_applied())));
  out.push_back(Gauge("hsync_reporter_roster_applied_timestamp_seconds",
                      "When a roster was last applied (Unix time; 0 = never)",
                      UnixSeconds(s.roster_applied_at())));
  prometheus::MetricFamily changed = CounterFamily(
      "hsync_reporter_users_changed_total",
      "Users changed on the child panel to follow the roster, by kind");
  AddSample(changed, static_cast<double>(s.users_created()), {{"kind", "created"}});
  AddSample(changed, static_cast<double>(s.users_updated()), {{"kind", "updated"}});
  AddSample(changed, static_cast<double>(s.users_disabled()), {{"kind", "disabled"}});
  AddSample(changed, static_cast<double>(s.users_removed()), {{"kind", "removed"}});
  out.push_back(std::move(changed));
  out.push_back(Counter("hsync_reporter_guard_trips_total",
                        "Roster updates refused by the mass-removal guard",
                        static_cast<double>(s.guard_trips())));
  out.push_back(Gauge("hsync_reporter_held_removals",
                      "Removals the mass-removal guard holds back until approve-removals",
                      static_cast<double>(s.held_removals())));
  out.push_back(Gauge("hsync_reporter_roster_skipped_users",
                      "Roster users not written because the child's database refuses them"
                      " (at most 1000 counted)",
                      static_cast<double>(s.skipped_users_size())));

  // Usage mode.
  out.push_back(Gauge("hsync_reporter_usage_following",
                      "1 while usage_mode follow moves the child's counters (0: watermark, reset, "
                      "or a panel without add_usage_json)",
                      s.usage_mode_effective() == "follow"));
  out.push_back(Counter("hsync_reporter_usage_follow_moves_total",
                        "Child counters moved to the parent's value by usage_mode follow",
                        static_cast<double>(s.usage_follow_users_moved())));

  // Apply trigger.
  out.push_back(Counter("hsync_reporter_apply_runs_total",
                        "Successful runs of the apply command after user changes",
                        static_cast<double>(s.apply_runs())));
  out.push_back(Counter("hsync_reporter_apply_failures_total", "Apply runs that failed",
                        static_cast<double>(s.apply_failures())));
  out.push_back(Gauge("hsync_reporter_apply_pending", "1 while user changes wait for an apply run",
                      s.apply_pending()));
  out.push_back(Counter("hsync_reporter_apply_busy_retries_total",
                        "Apply runs refused with exit 12 (another run active), retried",
                        static_cast<double>(s.apply_busy_retries())));
  out.push_back(Gauge("hsync_reporter_apply_generations_owed",
                      "Synced changes not yet covered by a successful apply run (generations)",
                      static_cast<double>(s.apply_generation_wanted() - std::min(
                          s.apply_generation_wanted(), s.apply_generation_done()))));
  // Proxy cores following user changes through the child panel's API.
  out.push_back(Gauge("hsync_reporter_core_sync_pending",
                      "Users whose proxy cores must still follow their row",
                      static_cast<double>(s.core_sync_pending())));
  out.push_back(Gauge("hsync_reporter_core_sync_oldest_timestamp_seconds",
                      "When the oldest pending core sync was queued (Unix time; 0 = none)",
                      UnixSeconds(s.core_sync_oldest_at())));
  out.push_back(Counter("hsync_reporter_core_syncs_total", "Users synced to the proxy cores",
                        static_cast<double>(s.core_syncs_done())));
  out.push_back(Counter("hsync_reporter_core_sync_failures_total",
                        "Failed core-sync calls to the child panel's API (each retried)",
                        static_cast<double>(s.core_syncs_failed())));
  out.push_back(Gauge("hsync_reporter_last_error_timestamp_seconds",
                      "When the last error was recorded (Unix time; 0 = never)",
                      UnixSeconds(s.last_error_at())));
  return out;
}

}  // namespace hsync::reporter
