#include "tests/e2e/child_node.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mariadb.h"
#include "common/status_macros.h"
#include "tests/support/child_process.h"
#include "tests/support/test_mariadb.h"

namespace hsync::e2e {

using hsync::testing::PanelsimOptions;
using hsync::testing::PanelsimRunner;
using hsync::testing::SharedMariaDb;

const std::vector<std::string>& RosterColumns() {
  static const std::vector<std::string> columns = {
      "name",        "usage_limit",        "package_days",       "mode",  "comment",
      "start_date",  "last_reset_time",    "telegram_id",        "lang",  "enable",
      "ed25519_private_key", "ed25519_public_key", "wg_pk", "wg_pub", "wg_psk"};
  return columns;
}

absl::StatusOr<std::unique_ptr<ChildNode>> ChildNode::Start(ChildNodeOptions options) {
  std::unique_ptr<ChildNode> child(new ChildNode());
  child->options_ = std::move(options);
  const ChildNodeOptions& o = child->options_;
  ASSIGN_OR_RETURN(child->proxy_, TcpProxy::Start(o.hub_port));

  PanelsimOptions panel;
  panel.database = hsync::testing::UniqueDatabaseName("child");
  panel.extra_args = {"--traffic-interval-ms",     std::to_string(o.traffic.interval_ms),
                      "--traffic-users-per-tick",  std::to_string(o.traffic.users_per_tick),
                      "--traffic-max-bytes",       std::to_string(o.traffic.max_bytes),
                      "--traffic-rmw-gap-ms",      std::to_string(o.traffic.rmw_gap_ms),
                      "--threads",                 "4",
                      "--seed",                    std::to_string(o.seed)};
  if (o.traffic.reset_interval_ms > 0) {
    panel.extra_args.push_back("--reset-interval-ms");
    panel.extra_args.push_back(std::to_string(o.traffic.reset_interval_ms));
  }
  if (o.apply_duration_ms > 0) {
    panel.extra_args.push_back("--apply-duration-ms");
    panel.extra_args.push_back(std::to_string(o.apply_duration_ms));
  }
  ASSIGN_OR_RETURN(child->panel_, PanelsimRunner::Start(std::move(panel)));
  // Paused until the test starts it: the table is still empty, nothing was generated.
  RETURN_IF_ERROR(child->SetTraffic(false));

  ReporterRunnerOptions reporter;
  reporter.node_id = o.node_id;
  reporter.token = o.token;
  reporter.hub_address = absl::StrCat("127.0.0.1:", child->proxy_->port());
  reporter.mysql_socket = SharedMariaDb().socket_path();
  reporter.panel_database = child->database();
  reporter.state_database = absl::StrCat(child->database(), "_state");
  reporter.collect_interval = o.collect_interval;
  reporter.apply_command = absl::StrCat(hsync::testing::BuiltBinary("panelsim-ctl"), " --port ",
                                        child->panel_->port(), " apply_users --no-gui");
  reporter.panel_address = absl::StrCat("127.0.0.1:", child->panel_->port());
  ASSIGN_OR_RETURN(child->reporter_, ReporterRunner::Create(std::move(reporter)));
  RETURN_IF_ERROR(child->reporter_->Start());
  return child;
}

ChildNode::~ChildNode() {
  // The reporter first: it must not see its panel vanish under it.
  reporter_.reset();
  panel_.reset();
  proxy_.reset();
}

absl::Status ChildNode::SetTraffic(bool enabled) {
  ASSIGN_OR_RETURN(hsync::testing::HttpResponse response,
                   panel_->Control("POST", "/_sim/traffic",
                                   absl::StrCat("{\"enabled\":", enabled ? "true" : "false", "}")));
  if (response.status != 200) {
    return absl::InternalError(absl::StrCat(node_id(), ": POST /_sim/traffic -> ",
                                            response.status, " ", response.body));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, uint64_t>> GeneratedBytes(hsync::testing::PanelsimRunner& panel,
                                                               const std::string& who) {
  ASSIGN_OR_RETURN(hsync::testing::HttpResponse response, panel.Control("GET", "/_sim/traffic"));
  if (response.status != 200) {
    return absl::InternalError(absl::StrCat(who, ": GET /_sim/traffic -> ", response.status));
  }
  std::map<std::string, uint64_t> generated;
  try {
    const nlohmann::json body = nlohmann::json::parse(response.body);
    for (const auto& [uuid, bytes] : body.at("per_user").items()) {
      generated[uuid] = bytes.get<uint64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat(who, ": /_sim/traffic: ", e.what()));
  }
  return generated;
}

absl::StatusOr<std::map<std::string, uint64_t>> ChildNode::Generated() {
  return GeneratedBytes(*panel_, node_id());
}

absl::StatusOr<std::vector<ChildUserRow>> ChildNode::Users() {
  ASSIGN_OR_RETURN(auto conn, MariaDbConnection::Connect(SharedMariaDb().Options(database())));
  ASSIGN_OR_RETURN(ResultSet rows,
                   conn->Query(absl::StrCat("SELECT uuid, ", absl::StrJoin(RosterColumns(), ", "),
                                            " FROM user ORDER BY id")));
  std::vector<ChildUserRow> users;
  users.reserve(rows.rows.size());
  for (const auto& row : rows.rows) {
    ChildUserRow user;
    user.uuid = row[0].value_or("");
    for (size_t i = 0; i < RosterColumns().size(); ++i) user.columns[RosterColumns()[i]] = row[i + 1];
    users.push_back(std::move(user));
  }
  return users;
}

}  // namespace hsync::e2e
