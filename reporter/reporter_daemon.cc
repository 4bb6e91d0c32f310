#include "reporter/reporter_daemon.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "reporter/panel/child_panel_client.h"
#include "reporter/collect/atomic_usage_probe.h"
#include "reporter/util/backoff.h"
#include "reporter/outbox/hub_channel.h"
#include "reporter/version.h"

namespace hsync::reporter {
namespace {

MariaDbOptions DbOptions(const MysqlConfig& m) {
  MariaDbOptions o;
  o.unix_socket = m.socket;
  o.user = m.user;
  o.password = m.password;
  o.connect_timeout = absl::Seconds(5);
  o.read_timeout = absl::Seconds(60);
  return o;
}

CollectOptions MakeCollectOptions(const ReporterConfig& c) {
  CollectOptions o;
  o.node_id = c.node_id;
  o.panel_database = c.mysql.database;
  o.min_report_bytes = c.collect.min_report_bytes;
  o.merge_after_rows = static_cast<size_t>(c.outbox.merge_after_rows);
  return o;
}

RosterApplyOptions MakeRosterOptions(const ReporterConfig& c, const CoreSyncQueue* queue) {
  RosterApplyOptions o;
  o.core_changes = queue;
  o.panel_database = c.mysql.database;
  o.remove_policy = c.roster.remove_policy;
  o.guard_min = c.roster.guard_min;
  o.guard_fraction = c.roster.guard_fraction;
  return o;
}

ApplyTriggerOptions MakeTriggerOptions(const ApplyConfig& a) {
  ApplyTriggerOptions o;
  o.command = a.command;
  o.debounce = a.debounce;
  o.max_delay = a.max_delay;
  o.busy_retry = a.busy_retry;
  o.timeout = a.timeout;
  return o;
}

// The child panel's API client, or none when [panel] core_sync = false.
std::unique_ptr<CoreSyncClient> MakeCoreSyncClient(const ReporterConfig& c, MariaDbOptions db) {
  if (!c.panel.core_sync) return std::make_unique<NoCoreSyncClient>();
  PanelCredentialOverrides overrides;
  overrides.address = c.panel.address;
  overrides.proxy_path = c.panel.proxy_path;
  overrides.api_key = c.panel.api_key;
  auto source = [db = std::move(db), overrides, panel_database = c.mysql.database]()
      -> absl::StatusOr<PanelCredentials> {
    auto conn = MariaDbConnection::Connect(db);
    if (!conn.ok()) return conn.status();
    return ResolvePanelCredentials(**conn, panel_database, overrides);
  };
  return std::make_unique<ChildPanelClient>(std::move(source), c.panel.timeout);
}

}  // namespace

ReporterDaemon::ReporterDaemon(ReporterConfig config)
    : config_(std::move(config)),
      db_options_(DbOptions(config_.mysql)),
      channel_(MakeHubChannel(config_.hub)),
      store_(config_.mysql.state_database, config_.collect.baseline_existing_usage),
      collector_(&store_, MakeCollectOptions(config_)),
      core_queue_(&store_, config_.mysql.database),
      applier_(&store_, MakeRosterOptions(config_, &core_queue_)),
      trigger_(MakeTriggerOptions(config_.apply), db_options_, &core_queue_, &board_) {
  CoreSyncerOptions syncer_options;
  syncer_options.retry_initial = config_.panel.retry_initial;
  syncer_options.retry_max = config_.panel.retry_max;
  core_syncer_ = std::make_unique<CoreSyncer>(db_options_, &core_queue_,
                                              MakeCoreSyncClient(config_, db_options_), &trigger_,
                                              &board_, syncer_options);
  if (config_.collect.usage_mode == UsageMode::kReset) {
    resetter_ = std::make_unique<UsageResetter>(&store_, config_.mysql.database);
  }
  if (config_.collect.usage_mode == UsageMode::kFollow) {
    usage_follower_ = std::make_unique<UsageFollower>(&store_, config_.mysql.database, &board_);
    applier_.set_usage_hook(usage_follower_.get());
  }
  OutboxSenderOptions sender_options;
  sender_options.token = config_.hub.token;
  sender_ = std::make_unique<OutboxSender>(channel_, db_options_, &store_, resetter_.get(), &board_,
                                           sender_options);
  RosterFollowerOptions follower_options;
  follower_options.node_id = config_.node_id;
  follower_options.token = config_.hub.token;
  follower_options.panel_database = config_.mysql.database;
  follower_options.state = &store_;
  follower_ = std::make_unique<RosterFollower>(channel_, db_options_, &applier_, core_syncer_.get(), &board_,
                                               follower_options);
  status_service_ = std::make_unique<StatusService>(&board_, channel_);
  board_.Update([&](auto& r) {
    r.set_version(kReporterVersion);
    r.set_node_id(config_.node_id);
    *r.mutable_started_at() = ToProtoTimestamp(absl::Now());
    r.set_hub_address(config_.hub.address);
    r.set_core_sync_mode(config_.panel.core_sync ? absl::StrCat("panel-api ", config_.panel.address)
                                                 : std::string("off"));
    r.set_usage_mode_configured(UsageModeName(config_.collect.usage_mode));
  });
}

ReporterDaemon::~ReporterDaemon() { Stop(); }

absl::Status ReporterDaemon::Start() {
  auto server = StatusServer::Start(config_.status.listen, status_service_.get());
  if (!server.ok()) return server.status();
  status_server_ = *std::move(server);
  LogInfo(absl::StrCat("hiddify-sync-reporter ", kReporterVersion, " node ", config_.node_id,
                       ": status on ", config_.status.listen, ", hub ", config_.hub.address,
                       config_.hub.plaintext ? " (plaintext)" : " (TLS)", ", usage_mode ",
                       UsageModeName(config_.collect.usage_mode),
                       ", collect every ", absl::FormatDuration(config_.collect.interval)));
  StartMetrics();
  if (!trigger_.enabled()) LogWarning("apply: no command configured; sing-box and WireGuard do not follow user changes");
  if (!config_.panel.core_sync) LogWarning("panel.core_sync = false: xray does not follow user changes until it restarts");
  heartbeat_unix_ms_ = absl::ToUnixMillis(absl::Now());
  collect_thread_ = std::thread([this] { CollectLoop(); });
  return absl::OkStatus();
}

void ReporterDaemon::StartMetrics() {
  const std::string& listen = config_.metrics.listen;
  metrics_ = StartMetricsOrLog(listen, instruments_.registry(), [this] {
    return ReporterStatusMetrics(status_service_->Current(), absl::Now());
  });
  if (metrics_ != nullptr && !IsLoopbackAddress(listen)) {
    LogWarning(absl::StrCat("metrics.listen = \"", listen, "\" is not loopback: user counts and "
                            "traffic totals are readable from the network (firewall it)"));
  }
}

void ReporterDaemon::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !collect_thread_.joinable() && status_server_ == nullptr) return;
    stopping_ = true;
  }
  if (collect_thread_.joinable()) collect_thread_.join();
  follower_->Stop();
  sender_->Stop();
  core_syncer_->Stop();
  trigger_.Stop();
  if (status_server_ != nullptr) {
    status_server_->Shutdown();
    status_server_.reset();
  }
  metrics_.reset();
}

bool ReporterDaemon::Alive(absl::Time now) const {
  // A collect is bounded by MariaDB's read timeout (60 s) per statement.
  return now - absl::FromUnixMillis(heartbeat_unix_ms_.load()) < absl::Minutes(5);
}

bool ReporterDaemon::WaitOrStop(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  absl::MutexLock lock(&mu_);
  auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  while (!stopping_ && absl::Now() < until) {
    heartbeat_unix_ms_ = absl::ToUnixMillis(absl::Now());
    mu_.AwaitWithTimeout(absl::Condition(&stop),
                         std::min(until - absl::Now(), absl::Seconds(1)));
  }
  heartbeat_unix_ms_ = absl::ToUnixMillis(absl::Now());
  return stopping_;
}

bool ReporterDaemon::EnsureState() {
  if (collect_conn_ == nullptr) {
    auto conn = MariaDbConnection::Connect(db_options_);
    if (!conn.ok()) {
      const std::string message = absl::StrCat("MariaDB: ", conn.status().message());
      LogError(message);
      board_.RecordError(message);
      return false;
    }
    collect_conn_ = *std::move(conn);
  }
  auto state = store_.EnsureSchema(*collect_conn_);
  if (!state.ok()) {
    const std::string message = absl::StrCat("state schema `", config_.mysql.state_database,
                                             "`: ", state.status().message());
    LogError(message);
    board_.RecordError(message);
    collect_conn_.reset();
    return false;
  }
  board_.Update([&](auto& r) {
    r.set_stream_id(state->stream_id);
    r.set_last_seq_written(state->next_seq - 1);
    r.set_last_seq_acked(state->last_acked_seq);
  });
  if (auto progress = store_.ReadSendProgress(*collect_conn_); progress.ok()) {
    board_.Update([&](auto& r) {
      r.set_stream_restarts(progress->stream_restarts);
      r.set_outbox_merges(progress->outbox_merges);
    });
  }
  PublishOutboxStats();
  PublishHeldRemovals();
  CheckUsageMode();
  return true;
}

void ReporterDaemon::CheckUsageMode() {
  if (usage_follower_ != nullptr) {
    // Unknown = not following: leaving the counter alone is always safe.
    if (auto checked = usage_follower_->CheckPanel(*collect_conn_); !checked.ok()) {
      LogWarning(absl::StrCat("usage_mode follow: could not check the panel for ",
                              kAtomicUsageProcedure, " (", checked.status().message(),
                              "); the counter is left alone until the next check"));
    }
    return;
  }
  auto atomic = PanelAddsUsageAtomically(*collect_conn_, config_.mysql.database);
  const bool old_panel = atomic.ok() && !*atomic;
  if (old_panel && config_.collect.usage_mode == UsageMode::kReset) {
    LogWarning(absl::StrCat("usage_mode reset: `", config_.mysql.database, "` has no ",
                            kAtomicUsageProcedure,
                            " (a panel older than v10.86.1): its read-modify-write can undo a"
                            " subtraction and report those bytes twice; use usage_mode = "
                            "\"watermark\" there"));
  }
  board_.Update([&](auto& r) {
    r.set_usage_mode_effective(UsageModeName(config_.collect.usage_mode));
    r.set_panel_adds_usage_atomically(atomic.ok() && *atomic);
    r.set_usage_mode_note(old_panel && config_.collect.usage_mode == UsageMode::kReset
                              ? "the panel has no add_usage_json procedure (older than v10.86.1): "
                                "a subtraction can be overwritten and reported twice"
                              : "");
    *r.mutable_usage_mode_checked_at() = ToProtoTimestamp(absl::Now());
  });
}

void ReporterDaemon::PublishHeldRemovals() {
  // Also after every collect: approve-removals may have cleared the set.
  auto held = applier_.held_removals().Summary(*collect_conn_);
  if (held.ok()) board_.Update([&](auto& r) { ShowHeldRemovals(*held, r); });
}

void ReporterDaemon::PublishOutboxStats() {
  // The sender publishes after every send; the collector after every write,
  // so status never shows an empty outbox while a written report waits.
  auto stats = store_.Stats(*collect_conn_);
  if (!stats.ok()) return;
  board_.Update([&](auto& r) {
    r.set_outbox_reports(stats->reports);
    r.set_outbox_bytes(stats->bytes);
    if (stats->reports == 0) r.clear_outbox_oldest_at();
    else *r.mutable_outbox_oldest_at() = ToProtoTimestamp(stats->oldest_at);
  });
}

void ReporterDaemon::CollectLoop() {
  Backoff backoff(absl::Seconds(1), absl::Seconds(30));
  while (!EnsureState()) {
    if (WaitOrStop(backoff.Next())) return;
  }
  trigger_.Start();
  core_syncer_->Start();
  sender_->Start();
  // The roster is followed only after a first successful collect: on a fresh
  // state that collect records the baseline, which must not swallow traffic of
  // users the roster creates afterwards.
  bool following = false;
  while (true) {
    const absl::Time started = absl::Now();
    const bool collected = CollectOnce();
    if (collected && !following) {
      follower_->Start();
      following = true;
    }
    heartbeat_unix_ms_ = absl::ToUnixMillis(absl::Now());
    const absl::Duration elapsed = absl::Now() - started;
    if (WaitOrStop(std::max(config_.collect.interval - elapsed, absl::ZeroDuration()))) return;
  }
}

bool ReporterDaemon::CollectOnce() {
  if (collect_conn_ == nullptr && !EnsureState()) return false;
  const absl::Time started = absl::Now();
  auto result = collector_.CollectOnce(*collect_conn_, started);
  if (!result.ok()) {
    instruments_.CollectFinished(absl::Now() - started, false, 0, 0);
    const std::string message = std::string(result.status().message());
    LogError(message);
    board_.RecordError(message);
    // A lost connection, or a state table that vanished: start over (a state
    // that is really gone gets a new stream).
    collect_conn_.reset();
    if (result.status().code() == absl::StatusCode::kNotFound) EnsureState();
    return false;
  }
  const absl::Duration took = absl::Now() - started;
  instruments_.CollectFinished(took, true, result->bytes_reported, result->users_reported);
  if (result->last_seq > 0) PublishOutboxStats();
  PublishHeldRemovals();
  board_.Update([&](auto& r) {
    *r.mutable_last_collect_at() = ToProtoTimestamp(started);
    r.set_last_collect_millis(static_cast<uint64_t>(absl::ToInt64Milliseconds(took)));
    // The stream itself is the sender's to change (a restart may have
    // happened since this collect committed).
    if (result->last_seq > 0 && r.stream_id() == result->stream_id) {
      r.set_last_seq_written(result->last_seq);
    }
    if (result->rows_merged > 0) r.set_outbox_merges(r.outbox_merges() + 1);
  });
  if (result->rows_merged > 0) {
    LogInfo(absl::StrCat("outbox: merged ", result->rows_merged, " reports the hub never received into ",
                         result->merged_into, " (seq ", result->first_seq, "-", result->last_seq,
                         "; outbox.merge_after_rows = ", config_.outbox.merge_after_rows, ")"));
  }
  if (result->last_seq > 0) {
    LogInfo(absl::StrCat("collect: seq ", result->first_seq,
                         result->last_seq != result->first_seq ? absl::StrCat("-", result->last_seq) : "",
                         ": ", result->users_reported, " users, ", result->bytes_reported, " bytes",
                         result->resets_detected > 0 ? absl::StrCat(", ", result->resets_detected, " resets seen") : "",
                         " (", result->users_waiting, " users below the threshold wait with ",
                         result->bytes_waiting, " bytes) in ",
                         absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1)))));
    sender_->Wake();
  } else {
    LogDebug(absl::StrCat("collect: nothing to report (", result->users_scanned, " users scanned)"));
  }
  return true;
}

}  // namespace hsync::reporter
