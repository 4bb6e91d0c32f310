#include "hub/service/hub_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metric_families.h"
#include "common/metrics_endpoint.h"
#include "common/status_macros.h"
#include "hub/apply/api_parent_writer.h"
#include "hub/apply/applier.h"
#include "hub/apply/database_parent_writer.h"
#include "common/panel_time.h"
#include "hub/parent/core_syncer.h"
#include "hub/parent/parent_database.h"
#include "hub/roster/database_roster_source.h"
#include "hub/roster/roster_source.h"
#include "hub/service/auth_rate_limiter.h"
#include "hub/service/hub_metrics.h"
#include "hub/service/hub_status.h"
#include "hub/journal/journal.h"
#include "hub/service/node_auth.h"
#include "hub/service/operator_socket.h"
#include "hub/parent/parent_client.h"
#include "hub/roster/roster_poller.h"
#include "hub/roster/roster_store.h"
#include "hub/service/sync_hub_service.h"
#include "hub/util/worker_pool.h"

#ifndef HSYNC_VERSION
#define HSYNC_VERSION "unknown"
#endif

namespace hsync::hub {
namespace {

constexpr char kServiceName[] = "hiddify_sync.v1.SyncHub";
// Threads that wait for journal commits (a report each) and status queries;
// more than the expected number of concurrent reporters, so that they all
// join the same group commit (50 streams: 64 threads gave ~25% more than 32).
// Concurrent reports beyond this wait in the queue (and still share commits).
constexpr size_t kWorkerThreads = 64;
// 100,000 usages of ~65 bytes each, with room to spare.
constexpr int kMaxReceiveMessageBytes = 32 << 20;

absl::StatusOr<std::string> ReadPemFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(key, ": cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) return absl::FailedPreconditionError(absl::StrCat(key, ": ", path, " is empty"));
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const HubConfig& config) {
  if (config.plaintext) return grpc::InsecureServerCredentials();
  ASSIGN_OR_RETURN(std::string cert, ReadPemFile("tls.cert_file", config.tls.cert_file));
  ASSIGN_OR_RETURN(std::string key, ReadPemFile("tls.key_file", config.tls.key_file));
  grpc_ssl_client_certificate_request_type request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  std::string client_ca;
  if (!config.tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(client_ca, ReadPemFile("tls.client_ca_file", config.tls.client_ca_file));
    request = config.tls.require_client_cert
                  ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                  : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  grpc::SslServerCredentialsOptions options(request);
  options.pem_root_certs = client_ca;
  options.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
  return grpc::SslServerCredentials(options);
}

}  // namespace

const char* HubVersion() { return HSYNC_VERSION; }

absl::StatusOr<std::unique_ptr<HubServer>> HubServer::Start(const HubConfig& config) {
  std::unique_ptr<HubServer> hub(new HubServer());
  hub->started_at_ = absl::Now();
  hub->keep_reports_ = config.keep_reports;

  absl::StatusOr<std::unique_ptr<Journal>> journal =
      Journal::Open(config.journal_path, JournalOptions{.audit_max_bytes = config.audit_max_bytes});
  if (!journal.ok()) {
    return absl::Status(journal.status().code(),
                        absl::StrCat("journal ", config.journal_path, ": ", journal.status().message()));
  }
  hub->journal_ = *std::move(journal);
  RosterStoreOptions roster_options;
  roster_options.history_max_bytes = config.roster_history_max_bytes;
  roster_options.usage_interval = config.roster_usage_interval;
  hub->roster_ = std::make_unique<RosterStore>(roster_options);
  hub->auth_ = std::make_unique<NodeAuthenticator>(config.node_token_hashes);
  hub->limiter_ = std::make_unique<AuthRateLimiter>();
  hub->pool_ = std::make_unique<WorkerPool>(kWorkerThreads);

  hub->instruments_ = std::make_unique<HubInstruments>();
  HubInstruments* instruments = hub->instruments_.get();

  // Everything the server's handlers read exists before it starts listening.
  ParentClientOptions parent_options = config.parent;
  parent_options.on_call = [instruments](const ParentCallRecord& call) {
    instruments->ParentCall(call);
  };
  // One panel session for all the hub's calls (PANEL.md §1).
  ASSIGN_OR_RETURN(parent_options.cookie_jar, ParentCookieJar::Create());
  RosterStore* roster = hub->roster_.get();
  ApplierHooks hooks;
  hooks.lookup_user = [roster](const std::string& uuid) { return roster->Lookup(uuid); };
  hooks.on_user_applied = [instruments](absl::Duration took, bool applied) {
    instruments->UserApplied(took, applied);
  };
  std::unique_ptr<ParentWriter> writer;
  std::unique_ptr<RosterSource> roster_source;
  if (config.parent_write == ParentWriteMode::kDatabase) {
    ASSIGN_OR_RETURN(std::unique_ptr<ParentClient> core_parent, ParentClient::Create(parent_options));
    auto db = std::make_unique<ParentDatabase>(config.parent_database);
    // No access or a wrong schema stops the start with a clear message; a
    // database that is down or restarting is only waited for.
    if (absl::StatusOr<MariaDbConnection*> conn = db->Get(); !conn.ok()) {
      const absl::Status& error = conn.status();
      if (error.code() != absl::StatusCode::kUnavailable) {
        return absl::Status(error.code(),
                            absl::StrCat("parent database (", config.parent_database.socket, ", ",
                                         config.parent_database.database, "): ", error.message()));
      }
      LogWarning(absl::StrCat("parent database not reachable yet, applies wait for it: ",
                              error.message()));
    }
    auto db_writer = std::make_unique<DatabaseParentWriter>(hub->journal_.get(), std::move(db),
                                                            [] { return PanelToday(); });
    hub->database_writer_ = db_writer.get();
    writer = std::move(db_writer);
    roster_source = std::make_unique<DatabaseRosterSource>(
        std::make_unique<ParentDatabase>(config.parent_database), [] { return PanelToday(); });
    hub->core_syncer_ = std::make_unique<CoreSyncer>(
        std::move(core_parent), config.apply.backoff_initial, config.apply.backoff_max);
    CoreSyncer* syncer = hub->core_syncer_.get();
    // Our SQL writes reach the parent's xray only through its API (PANEL.md
    // §4): a user whose is_active they flipped gets one PATCH {}.
    hooks.on_user_patched = [roster, syncer](const hiddify_sync::v1::User& user) {
      const std::optional<hiddify_sync::v1::User> before = roster->Lookup(user.uuid());
      roster->Upsert(user);
      const bool flipped = before.has_value() ? before->is_active() != user.is_active()
                                              : !user.is_active();
      if (flipped) syncer->Enqueue(user.uuid());
    };
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<ParentClient> applier_parent, ParentClient::Create(parent_options));
    ASSIGN_OR_RETURN(std::unique_ptr<ParentClient> poller_parent, ParentClient::Create(parent_options));
    writer = std::make_unique<ApiParentWriter>(hub->journal_.get(), std::move(applier_parent),
                                               config.apply.intent_settle_time);
    roster_source = std::make_unique<ApiRosterSource>(std::move(poller_parent));
    hooks.on_user_patched = [roster](const hiddify_sync::v1::User& user) { roster->Upsert(user); };
  }
  hub->parent_write_mode_ = config.parent_write == ParentWriteMode::kDatabase ? "database" : "api";
  hub->applier_ = std::make_unique<Applier>(hub->journal_.get(), std::move(writer),
                                            std::move(hooks), config.apply);
  ListPacing pacing;
  pacing.poll_interval = config.roster_poll_interval;
  pacing.max_share = config.roster_max_list_share;
  hub->poller_ = std::make_unique<RosterPoller>(std::move(roster_source), roster, pacing);

  RETURN_IF_ERROR(hub->StartServer(config));
  if (absl::Status started = hub->applier_->Start(); !started.ok()) {
    hub->Shutdown(absl::Seconds(1));
    return absl::Status(started.code(), absl::StrCat("applier: ", started.message()));
  }
  hub->poller_->Start();
  if (hub->core_syncer_ != nullptr) hub->core_syncer_->Start();
  hub->StartMetrics(config.metrics_listen);
  return hub;
}

void HubServer::StartMetrics(const std::string& listen) {
  auto snapshot = [this] {
    absl::StatusOr<hiddify_sync::v1::HubStatus> status = Status();
    if (!status.ok()) {
      LogWarning(absl::StrCat("metrics: status unavailable: ", status.status().message()));
      return std::vector<prometheus::MetricFamily>{
          Gauge("hsync_hub_status_ok", "1 when the hub could read its own status", 0)};
    }
    std::vector<prometheus::MetricFamily> families = HubStatusMetrics(*status, absl::Now());
    families.push_back(Gauge("hsync_hub_status_ok", "1 when the hub could read its own status", 1));
    return families;
  };
  metrics_ = StartMetricsOrLog(listen, instruments_->registry(), std::move(snapshot));
}

int HubServer::metrics_port() const { return metrics_ == nullptr ? 0 : metrics_->port(); }

absl::Status HubServer::StartServer(const HubConfig& config) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(config));

  SyncHubServiceDeps deps;
  deps.journal = journal_.get();
  deps.roster = roster_.get();
  deps.auth = auth_.get();
  deps.pool = pool_.get();
  deps.status = [this] { return Status(); };
  deps.limiter = limiter_.get();
  service_ = std::make_unique<SyncHubService>(std::move(deps));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, credentials, &port_);
  // The operator socket: plaintext (nothing leaves the host), the same
  // services; root-only by its file mode.
  if (!config.operator_socket.empty()) {
    RETURN_IF_ERROR(PrepareOperatorSocket(config.operator_socket));
    builder.AddListeningPort(absl::StrCat("unix:", config.operator_socket),
                             grpc::InsecureServerCredentials());
  }
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  // A second hub on the same port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Find dead reporters' streams; let reporters keep idle connections alive.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen, " (address in use or not available?)",
                     config.operator_socket.empty()
                         ? ""
                         : absl::StrCat(" or on the operator socket ", config.operator_socket)));
  }
  if (!config.operator_socket.empty()) {
    // Fails when the socket is not there (the server did not bind it).
    absl::StatusOr<ino_t> inode = RestrictOperatorSocket(config.operator_socket);
    if (!inode.ok()) {
      server_->Shutdown();
      server_->Wait();
      server_.reset();
      return inode.status();
    }
    operator_socket_ = config.operator_socket;
    operator_socket_inode_ = *inode;
  }
  // The journal is open: we can take reports. The parent's state shows in GetStatus.
  server_->GetHealthCheckService()->SetServingStatus(true);
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  return absl::OkStatus();
}

HubServer::~HubServer() { Shutdown(absl::Seconds(5)); }

void HubServer::Shutdown(absl::Duration grace) {
  if (stopped_) return;
  stopped_ = true;
  metrics_.reset();  // no scrape may read a stopping hub
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    service_->BeginShutdown();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
  }
  if (pool_ != nullptr) pool_->Stop();
  if (poller_ != nullptr) poller_->Stop();
  if (applier_ != nullptr) applier_->Stop();
  if (core_syncer_ != nullptr) core_syncer_->Stop();
  server_.reset();
  if (!operator_socket_.empty()) RemoveOperatorSocket(operator_socket_, operator_socket_inode_);
  journal_.reset();
}

absl::StatusOr<hiddify_sync::v1::HubStatus> HubServer::Status() {
  HubStatusInputs in;
  in.version = HubVersion();
  in.started_at = started_at_;
  ASSIGN_OR_RETURN(in.journal, journal_->Stats());
  ASSIGN_OR_RETURN(in.streams, journal_->Streams());
  if (applier_ != nullptr) in.applier = applier_->Stats();
  if (poller_ != nullptr) in.poller = poller_->State();
  in.parent_write_mode = parent_write_mode_;
  if (database_writer_ != nullptr) in.database_writer = database_writer_->Stats();
  if (core_syncer_ != nullptr) in.core_sync = core_syncer_->Stats();
  in.roster_version = roster_->version();
  in.roster_size = roster_->size();
  in.roster_fetched_at = roster_->fetched_at();
  in.roster_watchers = static_cast<uint32_t>(service_->open_roster_streams());
  in.roster_store = roster_->Stats();
  in.roster_streams = service_->roster_stream_totals();
  in.configured_nodes = auth_->NodeIds();
  in.live = service_->LiveNodes();
  in.auth_failures = limiter_->failures();
  in.auth_refused_calls = limiter_->blocked_calls();
  in.auth_blocked_peers = static_cast<uint32_t>(limiter_->blocked_peers());
  return BuildHubStatus(in);
}

void HubServer::ReplaceNodes(const std::map<std::string, std::string>& node_token_hashes) {
  auth_->Replace(node_token_hashes);
  service_->EndStreamsOfUnknownNodes();
}

absl::Status HubServer::PruneJournal() { return journal_->PruneReports(keep_reports_); }

}  // namespace hsync::hub
