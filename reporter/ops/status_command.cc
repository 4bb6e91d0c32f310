#include "reporter/ops/status_command.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/config_reader.h"
#include "common/proto_time.h"
#include "hiddify_sync/v1/reporter_status.grpc.pb.h"
#include "reporter/config/reporter_config.h"

namespace hsync::reporter {
namespace {

std::string Ago(const google::protobuf::Timestamp& ts, absl::Time now) {
  const absl::Time t = FromProtoTimestamp(ts);
  if (t == absl::InfinitePast()) return "never";
  return absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", t, absl::LocalTimeZone()), " (",
                      absl::FormatDuration(absl::Trunc(now - t, absl::Seconds(1))), " ago)");
}

// The daemon lists at most this many skipped users (kMaxSkippedUsersShown).
constexpr size_t kSkippedListLimit = 1000;
constexpr int kSkippedPrinted = 20;

std::string Bytes(uint64_t b) {
  if (b < (1u << 20)) return absl::StrCat(b, " B");
  return absl::StrCat(b, " B (", absl::SixDigits(static_cast<double>(b) / (1 << 30)), " GiB)");
}

}  // namespace

HealthVerdict JudgeStatus(const hiddify_sync::v1::ReporterStatusReply& r, absl::Time now,
                          absl::Duration collect_interval) {
  HealthVerdict v;
  auto degrade = [&](std::string why) {
    v.health = ReporterHealth::kDegraded;
    v.reasons.push_back(std::move(why));
  };
  const absl::Duration stale = std::max(collect_interval * 3, absl::Seconds(90));
  const absl::Time started = FromProtoTimestamp(r.started_at());
  const absl::Time last_collect = FromProtoTimestamp(r.last_collect_at());
  if (last_collect == absl::InfinitePast()) {
    if (now - started > stale) degrade("no collect has succeeded yet");
  } else if (now - last_collect > stale) {
    degrade("the last successful collect is too old");
  }
  if (!r.hub_connected()) degrade("not connected to the hub");
  if (!r.roster_stream_open()) degrade("the roster stream is not open");
  const absl::Time oldest = FromProtoTimestamp(r.outbox_oldest_at());
  if (r.outbox_reports() > 0 && oldest != absl::InfinitePast() && now - oldest > stale) {
    degrade("reports wait in the outbox (the hub does not acknowledge them)");
  }
  if (r.apply_pending() && r.apply_failures() > 0) degrade("the panel apply trigger is failing");
  const absl::Time core_oldest = FromProtoTimestamp(r.core_sync_oldest_at());
  if (r.core_sync_pending() > 0 && core_oldest != absl::InfinitePast() && now - core_oldest > stale) {
    degrade("users wait for their proxy cores to follow (the child panel's API fails)");
  }
  if (r.held_removals() > 0) {
    degrade(absl::StrCat("the mass-removal guard holds back ", r.held_removals(),
                         " removals (review them: hiddify-sync-reporter approve-removals)"));
  }
  if (r.skipped_users_size() > 0) {
    degrade(absl::StrCat(r.skipped_users_size(),
                         " roster users are skipped (the child's database refuses them)"));
  }
  const absl::Time error_at = FromProtoTimestamp(r.last_error_at());
  if (!r.last_error().empty() && error_at != absl::InfinitePast() &&
      now - error_at < absl::Minutes(5)) {
    degrade("an error in the last 5 minutes");
  }
  return v;
}

// "usage mode:" (README "usage_mode"): the mode in effect, the configured one
// when they differ and why, the panel's kind of usage adds.
static void PrintUsageMode(const hiddify_sync::v1::ReporterStatusReply& r, std::ostream& out) {
  if (r.usage_mode_configured().empty()) return;
  const std::string& effective =
      r.usage_mode_effective().empty() ? r.usage_mode_configured() : r.usage_mode_effective();
  out << "usage mode:     " << effective;
  if (effective != r.usage_mode_configured()) out << " (configured " << r.usage_mode_configured() << ")";
  if (!r.usage_mode_effective().empty()) {
    out << ", panel adds usage "
        << (r.panel_adds_usage_atomically() ? "atomically (add_usage_json)" : "by read-modify-write");
  }
  if (effective == "follow") {
    out << ", counters moved " << r.usage_follow_users_moved() << " times ("
        << r.usage_follow_bytes_moved() << " bytes net)";
  }
  out << "\n";
  if (!r.usage_mode_note().empty()) out << "  ! " << r.usage_mode_note() << "\n";
}

void PrintStatus(const hiddify_sync::v1::ReporterStatusReply& r, const HealthVerdict& verdict,
                 absl::Time now, std::ostream& out) {
  const char* word = verdict.health == ReporterHealth::kHealthy ? "healthy" : "DEGRADED";
  out << "hiddify-sync-reporter " << r.version() << " node " << r.node_id() << ": " << word
      << "\n";
  for (const auto& reason : verdict.reasons) out << "  ! " << reason << "\n";
  out << "started:        " << Ago(r.started_at(), now) << "\n"
      << "hub:            " << r.hub_address() << (r.hub_connected() ? " connected" : " NOT connected")
      << ", roster stream " << (r.roster_stream_open() ? "open" : "CLOSED") << "\n"
      << "last ack:       " << Ago(r.last_ack_at(), now) << "\n"
      << "last collect:   " << Ago(r.last_collect_at(), now) << ", took "
      << r.last_collect_millis() << " ms\n"
      << "stream:         " << r.stream_id() << ", seq written " << r.last_seq_written()
      << ", acked " << r.last_seq_acked() << ", restarts " << r.stream_restarts() << "\n"
      << "outbox:         " << r.outbox_reports() << " reports, " << Bytes(r.outbox_bytes())
      << (r.outbox_reports() > 0 ? absl::StrCat(", oldest ", Ago(r.outbox_oldest_at(), now)) : "")
      << ", merged " << r.outbox_merges() << " times\n"
      << "roster:         version " << r.roster_version_applied() << " applied "
      << Ago(r.roster_applied_at(), now) << "\n"
      << "users:          created " << r.users_created() << ", updated " << r.users_updated()
      << ", disabled " << r.users_disabled() << ", removed " << r.users_removed() << "\n"
      << "removal guard:  " << r.guard_trips() << " trips"
      << (r.last_guard_reason().empty() ? "" : absl::StrCat(", last: ", r.last_guard_reason()))
      << "\n"
      << "held removals:  " << r.held_removals()
      << (r.held_removals() == 0
              ? std::string()
              : absl::StrCat(" since ", Ago(r.held_removals_since(), now),
                             " (approve: hiddify-sync-reporter approve-removals)"))
      << "\n";
  if (r.held_removals() > 0) out << "  held because:  " << r.held_removals_reason() << "\n";
  out << "skipped users:  " << r.skipped_users_size()
      << (static_cast<size_t>(r.skipped_users_size()) >= kSkippedListLimit ? " or more" : "")
      << "\n";
  for (int i = 0; i < r.skipped_users_size() && i < kSkippedPrinted; ++i) {
    out << "  " << r.skipped_users(i).uuid() << ": " << r.skipped_users(i).reason() << "\n";
  }
  if (r.skipped_users_size() > kSkippedPrinted) {
    out << "  ... and " << r.skipped_users_size() - kSkippedPrinted << " more\n";
  }
  out << "core sync:      " << (r.core_sync_mode().empty() ? std::string("?") : r.core_sync_mode())
      << ": " << r.core_sync_pending() << " users pending"
      << (r.core_sync_pending() > 0
              ? absl::StrCat(" (oldest queued ", Ago(r.core_sync_oldest_at(), now), ")")
              : std::string())
      << ", " << r.core_syncs_done() << " synced, " << r.core_syncs_failed()
      << " failed attempts\n";
  if (!r.core_sync_last_error().empty()) {
    out << "  last failure:  " << r.core_sync_last_error() << " at "
        << Ago(r.core_sync_last_error_at(), now) << "\n";
  }
  out << "panel apply:    " << r.apply_runs() << " runs, " << r.apply_failures() << " failures, "
      << r.apply_busy_retries() << " busy retries (exit 12), generation "
      << r.apply_generation_done() << "/" << r.apply_generation_wanted()
      << (r.apply_pending() ? ", a run is pending" : "") << "\n";
  PrintUsageMode(r, out);
  out << "last error:     "
      << (r.last_error().empty() ? std::string("none")
                                 : absl::StrCat(r.last_error(), " at ", Ago(r.last_error_at(), now)))
      << "\n";
}

int RunStatusCommand(const std::string& config_path, std::ostream& out, std::ostream& err) {
  std::string listen = StatusConfig().listen;
  absl::Duration interval = CollectConfig().interval;
  if (auto reader = ConfigReader::LoadFile(config_path); reader.ok()) {
    listen = reader->GetString("status.listen", listen);
    interval = reader->GetDuration("collect.interval", interval, absl::Seconds(5), absl::Hours(1));
  } else {
    err << "warning: " << reader.status().message() << "; trying " << listen << "\n";
  }
  if (!IsLoopbackAddress(listen)) {
    err << config_path << ": status.listen: must be a loopback address\n";
    return static_cast<int>(ReporterHealth::kDown);
  }
  auto channel = grpc::CreateChannel(listen, grpc::InsecureChannelCredentials());
  auto stub = hiddify_sync::v1::ReporterStatus::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  hiddify_sync::v1::ReporterStatusReply reply;
  const grpc::Status status =
      stub->GetStatus(&context, hiddify_sync::v1::GetReporterStatusRequest(), &reply);
  if (!status.ok()) {
    out << "hiddify-sync-reporter: DOWN (cannot reach its status service at " << listen << ": "
        << status.error_message() << ")\n";
    return static_cast<int>(ReporterHealth::kDown);
  }
  const absl::Time now = absl::Now();
  HealthVerdict verdict = JudgeStatus(reply, now, interval);
  PrintStatus(reply, verdict, now, out);
  return static_cast<int>(verdict.health);
}

}  // namespace hsync::reporter
