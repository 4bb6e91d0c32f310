#include "tests/e2e/old_tool_client.h"

#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace hsync::e2e {
namespace {

std::optional<std::string> JsonText(const nlohmann::json& user, const char* key) {
  const nlohmann::json value = user.value(key, nlohmann::json());
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

}  // namespace

OldToolClient::OldToolClient(OldToolOptions options)
    : options_(std::move(options)), http_(options_.parent_root_url) {}

OldToolClient::~OldToolClient() { Stop(); }

absl::StatusOr<hsync::testing::HttpResponse> OldToolClient::Call(const std::string& method,
                                                                 const std::string& path,
                                                                 const std::string& body) {
  return http_.Request(method,
                       absl::StrCat("/", options_.parent_proxy_path, "/api/v2/admin/", path), body,
                       {absl::StrCat("Hiddify-API-Key: ", options_.parent_api_key),
                        "Accept: application/json", "Content-Type: application/json",
                        "User-Agent: python-requests/2.31.0"},
                       absl::Seconds(10));
}

absl::Status OldToolClient::EnsureDb() {
  if (db_ != nullptr && db_->Ping()) return absl::OkStatus();
  db_.reset();
  ASSIGN_OR_RETURN(db_, MariaDbConnection::Connect(options_.child_db));
  return absl::OkStatus();
}

absl::Status OldToolClient::RunCycle() {
  RETURN_IF_ERROR(EnsureDb());
  absl::Status synced = SyncUsers();
  const absl::Time send_started = absl::Now();
  absl::Status sent = SendUsage();
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.cycles;
    if (sent.ok()) stats_.send_spans.emplace_back(send_started, absl::Now());
    if (!sent.ok()) ++stats_.failed_cycles;
  }
  return synced.ok() ? sent : synced;
}

absl::Status OldToolClient::SyncUsers() {
  ASSIGN_OR_RETURN(auto response, Call("GET", "user/"));
  nlohmann::json users = nlohmann::json::array();
  if (response.status == 200) {
    try {
      users = nlohmann::json::parse(response.body);
    } catch (const nlohmann::json::exception& e) {
      return absl::InternalError(absl::StrCat("old tool: user list: ", e.what()));
    }
  } else if (response.status != 404) {
    return absl::UnavailableError(absl::StrCat("old tool: GET user/ -> ", response.status));
  }
  ASSIGN_OR_RETURN(ResultSet local_rows, db_->Query("SELECT uuid, enable FROM user"));
  std::map<std::string, std::string> local;
  for (const auto& row : local_rows.rows) local[row[0].value_or("")] = row[1].value_or("");
  std::set<std::string> on_parent;
  std::vector<std::string> inserts;
  for (const nlohmann::json& user : users) {
    const std::string uuid = user.value("uuid", "");
    on_parent.insert(uuid);
    const std::string enable = user.value("is_active", false) ? "1" : "0";
    auto found = local.find(uuid);
    if (found != local.end()) {
      if (found->second != enable) {
        RETURN_IF_ERROR(db_->Execute(absl::StrCat("UPDATE user SET enable = ", enable,
                                                  " WHERE uuid = ", db_->Quote(uuid)))
                            .status());
      }
      continue;
    }
    auto quoted = [&](const char* key) {
      std::optional<std::string> v = JsonText(user, key);
      return v.has_value() ? db_->Quote(*v) : std::string("NULL");
    };
    uint64_t limit = 0;
    if (auto gib = PanelGiBToBytes(user.value("usage_limit_GB", 0.0)); gib.ok()) limit = *gib;
    std::optional<std::string> reset = JsonText(user, "last_reset_time");
    inserts.push_back(absl::StrCat(
        "(", db_->Quote(uuid), ",", quoted("name"), ",", quoted("last_online"), ",", limit, ",",
        user.value("package_days", 0), ",", quoted("mode"), ",", quoted("start_date"), ",0,",
        reset.has_value() ? db_->Quote(reset->substr(0, 10)) : "NULL", ",1,100,", enable, ",",
        quoted("comment"), ",", quoted("telegram_id"), ",", quoted("lang"), ",",
        quoted("ed25519_private_key"), ",", quoted("ed25519_public_key"), ",", quoted("wg_pk"), ",",
        quoted("wg_pub"), ",", quoted("wg_psk"), ")"));
  }
  if (!inserts.empty()) {
    RETURN_IF_ERROR(db_->Execute(absl::StrCat(
                           "INSERT INTO user (uuid, name, last_online, usage_limit, package_days, "
                           "mode, start_date, current_usage, last_reset_time, added_by, max_ips, "
                           "enable, comment, telegram_id, lang, ed25519_private_key, "
                           "ed25519_public_key, wg_pk, wg_pub, wg_psk) VALUES ",
                           absl::StrJoin(inserts, ",")))
                        .status());
  }
  // Users gone from the parent are deleted, behind the mass-deletion guard.
  std::vector<std::string> gone;
  for (const auto& [uuid, unused] : local) {
    if (!on_parent.contains(uuid)) gone.push_back(db_->Quote(uuid));
  }
  const size_t limit = std::max<size_t>(10, local.size() / 4);
  if (!gone.empty() && !users.empty() && gone.size() <= limit) {
    RETURN_IF_ERROR(
        db_->Execute(absl::StrCat("DELETE FROM user WHERE uuid IN (", absl::StrJoin(gone, ","), ")"))
            .status());
  }
  return absl::OkStatus();
}

absl::Status OldToolClient::SendUsage() {
  ASSIGN_OR_RETURN(ResultSet rows,
                   db_->Query("SELECT uuid, current_usage FROM user WHERE current_usage > 0"));
  bool all_sent = true;
  absl::Status first_error;
  for (const auto& row : rows.rows) {
    const std::string uuid = row[0].value_or("");
    uint64_t local = 0;
    if (!absl::SimpleAtoi(row[1].value_or("0"), &local)) continue;
    auto got = Call("GET", absl::StrCat("user/", uuid, "/"));
    uint64_t parent = 0;
    bool ok = got.ok() && got->status == 200;
    if (ok) {
      try {
        auto value = PanelGiBToBytes(nlohmann::json::parse(got->body).at("current_usage_GB").get<double>());
        ok = value.ok();
        if (ok) parent = *value;
      } catch (const nlohmann::json::exception&) {
        ok = false;
      }
    }
    if (ok) {
      auto patched = Call("PATCH", absl::StrCat("user/", uuid, "/"),
                          absl::StrCat("{\"current_usage_GB\":", BytesToPanelGiB(parent + local), "}"));
      ok = patched.ok() && patched->status == 200;
    }
    if (!ok) {
      all_sent = false;
      if (first_error.ok()) first_error = absl::UnavailableError(absl::StrCat("old tool: send of ", uuid, " failed"));
      continue;
    }
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.users_sent;
    stats_.bytes_sent += local;
  }
  // The flaw: everything is zeroed, including what arrived since the read;
  // and after a partial failure nothing is, so the sent users go again.
  if (all_sent && !rows.rows.empty()) {
    RETURN_IF_ERROR(db_->Execute("UPDATE user SET current_usage = 0").status());
  }
  return first_error;
}

void OldToolClient::Start(absl::Duration phase) {
  stop_ = std::make_unique<absl::Notification>();
  thread_ = std::thread([this, phase] {
    if (stop_->WaitForNotificationWithTimeout(phase)) return;
    while (true) {
      const absl::Time started = absl::Now();
      (void)RunCycle();
      if (stop_->WaitForNotificationWithTimeout(options_.cycle - (absl::Now() - started))) return;
    }
  });
}

void OldToolClient::Stop() {
  if (!thread_.joinable()) return;
  stop_->Notify();
  thread_.join();
}

OldToolStats OldToolClient::stats() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

}  // namespace hsync::e2e
