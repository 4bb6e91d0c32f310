#include "hub/ops/status_summary.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::HubStatus;
using hiddify_sync::v1::NodeStatus;

bool IsSet(const google::protobuf::Timestamp& ts) {
  return FromProtoTimestamp(ts) != absl::InfinitePast();
}

std::string Age(const google::protobuf::Timestamp& ts, absl::Time now) {
  const absl::Time t = FromProtoTimestamp(ts);
  if (t == absl::InfinitePast()) return "never";
  const absl::Duration age = std::max(absl::ZeroDuration(), now - t);
  return absl::StrCat(absl::FormatDuration(absl::Trunc(age, absl::Seconds(1))), " ago");
}

std::string When(const google::protobuf::Timestamp& ts, absl::Time now) {
  const absl::Time t = FromProtoTimestamp(ts);
  if (t == absl::InfinitePast()) return "never";
  return absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", t, absl::LocalTimeZone()), " (",
                      Age(ts, now), ")");
}

std::string Bytes(uint64_t b) {
  if (b < (uint64_t{1} << 20)) return absl::StrCat(b, " B");
  if (b < (uint64_t{1} << 30)) {
    return absl::StrCat(b, " B (", absl::SixDigits(static_cast<double>(b) / (1 << 20)), " MiB)");
  }
  return absl::StrCat(b, " B (", absl::SixDigits(static_cast<double>(b) / (1 << 30)), " GiB)");
}

bool NodeIsSilent(const NodeStatus& node, absl::Time now, absl::Time started,
                  absl::Duration limit) {
  if (node.roster_stream_open()) return false;
  const absl::Time last = FromProtoTimestamp(node.last_report_at());
  if (last == absl::InfinitePast()) return started != absl::InfinitePast() && now - started > limit;
  return now - last > limit;
}

}  // namespace

HubVerdict JudgeHubStatus(const HubStatus& s, absl::Time now, const HubStatusThresholds& t) {
  HubVerdict v;
  auto degrade = [&v](std::string why) {
    v.health = HubHealth::kDegraded;
    v.reasons.push_back(std::move(why));
  };
  if (!s.parent_reachable()) degrade("the parent panel is unreachable");
  if (s.failing_users_size() > 0) {
    degrade(absl::StrCat(s.failing_users_size(), " user(s) failing to apply to the parent"));
  }
  const absl::Duration pending_limit = std::max(2 * t.max_apply_delay, absl::Seconds(30));
  const absl::Time oldest = FromProtoTimestamp(s.oldest_pending_at());
  if (s.pending_users() > 0 && oldest != absl::InfinitePast() && now - oldest > pending_limit) {
    degrade(absl::StrCat("pending usage waits ",
                         absl::FormatDuration(absl::Trunc(now - oldest, absl::Seconds(1))),
                         " (more than ", absl::FormatDuration(pending_limit), ")"));
  }
  if (s.roster_skipped_users_size() > 0) {
    degrade(absl::StrCat(s.roster_skipped_users_size(),
                         " parent user(s) unreadable, left out of the roster"));
  }
  const absl::Time started = FromProtoTimestamp(s.started_at());
  for (const NodeStatus& node : s.nodes()) {
    if (NodeIsSilent(node, now, started, t.silent_node)) {
      degrade(absl::StrCat("node ", node.node_id(), " is silent (no roster stream, last report ",
                           Age(node.last_report_at(), now), ")"));
    }
  }
  return v;
}

void PrintHubStatus(const HubStatus& s, const HubVerdict& verdict, absl::Time now,
                    std::ostream& out) {
  out << "hiddify-sync-hub " << s.version() << ": "
      << (verdict.health == HubHealth::kHealthy ? "healthy" : "DEGRADED") << "\n";
  for (const std::string& reason : verdict.reasons) out << "  ! " << reason << "\n";
  out << "  started:        " << When(s.started_at(), now) << "\n";

  out << "\nparent panel:     " << (s.parent_reachable() ? "reachable" : "UNREACHABLE") << "\n";
  if (!s.last_parent_error().empty()) {
    out << "  last error:     " << s.last_parent_error() << " ("
        << Age(s.last_parent_error_at(), now) << ")\n";
  }

  out << "\njournal:\n";
  out << "  pending:        " << s.pending_users() << " users, " << Bytes(s.pending_bytes());
  if (s.pending_users() > 0 && IsSet(s.oldest_pending_at())) {
    out << ", oldest " << Age(s.oldest_pending_at(), now);
  }
  out << "\n  raw reports:    " << s.journal_reports() << " kept for audit, " << Bytes(s.audit_bytes());
  if (s.audit_max_bytes() == 0) {
    out << ", no size limit (pruned by age only)\n";
  } else {
    out << " of at most " << Bytes(s.audit_max_bytes()) << " (oldest pruned first)\n";
  }
  out << "  rolled back:    " << s.rollback_refusals()
      << " reports refused since start (a reporter's state was rolled back; it starts a new "
         "stream)\n";
  out << "  orphaned:       " << s.orphaned_users() << " users, " << Bytes(s.orphaned_bytes())
      << " (users the parent does not know)\n";

  out << "\napplier:\n";
  out << "  last apply:     " << When(s.last_apply_at(), now) << "\n";
  out << "  applied:        " << Bytes(s.bytes_applied_total()) << " in " << s.patches_total()
      << " PATCHes\n";
  out << "  errors:         " << s.apply_errors() << " failed applies since start\n";
  if (s.failing_users_size() > 0) {
    out << "  failing users:  " << s.failing_users_size() << "\n";
    for (const auto& user : s.failing_users()) {
      out << "    " << user.uuid() << ": " << Bytes(user.pending_bytes()) << " pending, "
          << user.consecutive_failures() << " failures, last: " << user.last_error() << "\n";
    }
  }

  out << "\nauthentication:   " << s.auth_failures() << " failed, " << s.auth_refused_calls()
      << " calls refused from blocked addresses, " << s.auth_blocked_peers()
      << " address(es) blocked now\n";

  out << "\nroster:           version " << s.roster_version() << ", " << s.roster_size()
      << " users, fetched " << Age(s.roster_fetched_at(), now) << ", " << s.roster_watchers()
      << " watching streams\n";
  if (s.roster_skipped_users_size() > 0) {
    out << "  skipped users:  " << s.roster_skipped_users_size()
        << " (unreadable on the parent; children keep what they had)\n";
    constexpr int kShown = 20;
    for (int i = 0; i < s.roster_skipped_users_size() && i < kShown; ++i) {
      const auto& user = s.roster_skipped_users(i);
      out << "    " << (user.uuid().empty() ? "(no uuid)" : user.uuid()) << ": " << user.reason()
          << "\n";
    }
    if (s.roster_skipped_users_size() > kShown) {
      out << "    ... and " << s.roster_skipped_users_size() - kShown << " more\n";
    }
  }

  out << "\nnodes (" << s.nodes_size() << "):\n";
  for (const NodeStatus& node : s.nodes()) {
    out << "  " << node.node_id() << ": last report " << Age(node.last_report_at(), now)
        << ", roster stream " << (node.roster_stream_open() ? "open" : "CLOSED") << ", "
        << node.reports_accepted() << " reports, " << Bytes(node.bytes_accepted()) << ", "
        << node.duplicates() << " duplicates\n";
  }
}

}  // namespace hsync::hub
