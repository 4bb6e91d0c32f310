#include "tests/panelsim/control_api.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "nlohmann/json.hpp"
#include "tests/panelsim/core_render.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/py_json.h"

namespace hsync::panelsim {
namespace {

using nlohmann::json;

SimResponse Json(int status, const json& body) {
  SimResponse response;
  response.status = status;
  response.body = PyDumps(body);
  return response;
}

SimResponse Raw(std::string body) {
  SimResponse response;
  response.body = std::move(body);
  return response;
}

SimResponse BadRequest(std::string_view message) {
  return Json(400, json{{"error", std::string(message)}});
}

// The request body as a JSON object ({} when empty); nullopt if malformed.
std::optional<json> BodyObject(const SimRequest& request) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  json parsed = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

}  // namespace

bool ControlApi::Owns(const std::string& path) { return absl::StartsWith(path, "/_sim/"); }

SimResponse ControlApi::Handle(const SimRequest& request) {
  const std::string& m = request.method;
  std::string path = request.path;
  if (path.size() > 1 && path.back() == '/') path.pop_back();

  if (path == "/_sim/health" && m == "GET") return Json(200, json{{"ok", true}});
  if (path == "/_sim/counters" && m == "GET") {
    return Raw(t_.counters.ToJson(t_.cores.DriverCallsJson()));
  }
  if (path == "/_sim/counters" && m == "DELETE") {
    t_.counters.Reset();
    t_.cores.ResetDriverCalls();
    return Json(200, json{{"ok", true}});
  }
  if (path == "/_sim/cores" && m == "GET") return Raw(t_.cores.ToJson());
  if (path == "/_sim/faults" && m == "DELETE") {
    t_.faults.Clear();
    return Json(200, json{{"ok", true}});
  }
  if (path == "/_sim/traffic" && m == "GET") return Raw(t_.traffic.StatusJson());

  std::optional<json> body = BodyObject(request);
  if (!body.has_value()) return BadRequest("the body must be a JSON object");
  if (std::optional<SimResponse> served = HandleServer(m, path, *body)) return *served;

  if (path == "/_sim/faults" && m == "POST") {
    absl::StatusOr<FaultRule> rule = ParseFaultRule(*body);
    if (!rule.ok()) return BadRequest(std::string(rule.status().message()));
    t_.faults.Add(*rule);
    return Json(200, json{{"ok", true}, {"rules", t_.faults.RuleCount()}});
  }
  if (path == "/_sim/traffic" && m == "POST") {
    if (!body->contains("enabled") || !(*body)["enabled"].is_boolean()) {
      return BadRequest("enabled must be true or false");
    }
    const bool enabled = (*body)["enabled"].get<bool>();
    t_.traffic.SetEnabled(enabled);
    if (!enabled) {
      // Paused: what the cores carried reaches the table before the answer.
      absl::StatusOr<int> flushed = t_.usage_task.RunOnce();
      if (!flushed.ok()) return Json(500, json{{"error", std::string(flushed.status().message())}});
    }
    return Raw(t_.traffic.StatusJson());
  }
  if (path == "/_sim/add_traffic" && m == "POST") {
    if (!body->contains("uuid") || !(*body)["uuid"].is_string() || !body->contains("bytes") ||
        !(*body)["bytes"].is_number_integer()) {
      return BadRequest("expected {\"uuid\": string, \"bytes\": integer}");
    }
    absl::StatusOr<int64_t> written =
        t_.traffic.AddTraffic((*body)["uuid"].get<std::string>(), (*body)["bytes"].get<int64_t>());
    if (absl::IsNotFound(written.status())) return Json(404, json{{"error", "no such user"}});
    if (!written.ok()) return Json(500, json{{"error", std::string(written.status().message())}});
    return Json(200, json{{"ok", true}, {"current_usage", *written}});
  }
  if (path == "/_sim/reset" && m == "POST") {
    if (body->contains("uuid")) {
      if (!(*body)["uuid"].is_string()) return BadRequest("uuid must be a string");
      absl::Status status = t_.resetter.ResetUser((*body)["uuid"].get<std::string>());
      if (absl::IsNotFound(status)) return Json(404, json{{"error", "no such user"}});
      if (!status.ok()) return Json(500, json{{"error", std::string(status.message())}});
      return Json(200, json{{"ok", true}, {"reset", 1}});
    }
    absl::StatusOr<int> count = t_.resetter.ResetDue();
    if (!count.ok()) return Json(500, json{{"error", std::string(count.status().message())}});
    return Json(200, json{{"ok", true}, {"reset", *count}});
  }
  if (path == "/_sim/clock" && m == "POST") {
    if (!body->contains("today") || !(*body)["today"].is_string()) {
      return BadRequest("expected {\"today\": \"YYYY-MM-DD\"}");
    }
    absl::StatusOr<absl::CivilDay> day = ParsePanelDate((*body)["today"].get<std::string>());
    if (!day.ok()) return BadRequest("today must be YYYY-MM-DD");
    t_.clock.SetToday(*day);
    return Json(200, json{{"ok", true}, {"today", FormatPanelDate(*day)}});
  }
  return Json(404, json{{"error", absl::StrCat("no control route ", m, " ", request.path)}});
}

std::optional<SimResponse> ControlApi::HandleServer(const std::string& m, const std::string& path,
                                                    const json& body) {
  if (m != "POST") return std::nullopt;
  if (path == "/_sim/apply_users") {
    t_.counters.CountApplyUsers();
    std::vector<std::string> args = {"apply_users", "--no-gui"};
    if (body.contains("args")) {
      const json& given = body["args"];
      if (!given.is_array()) return BadRequest("args must be an array of strings");
      args.clear();
      for (const json& a : given) {
        if (!a.is_string()) return BadRequest("args must be an array of strings");
        args.push_back(a.get<std::string>());
      }
    }
    return Json(200, json{{"exit", t_.apply.Run(args)}});
  }
  if (path == "/_sim/xray_restart") {
    absl::StatusOr<std::vector<std::string>> users =
        RenderCoreUsers(DbSession::ForThisThread(), t_.clock.Today());
    if (!users.ok()) return Json(500, json{{"error", std::string(users.status().message())}});
    t_.cores.RestartXray(*users);
    t_.counters.CountXrayRestart();
    return Json(200, json{{"ok", true}, {"xray", users->size()}});
  }
  if (path == "/_sim/usage_task") {
    absl::StatusOr<int> users = t_.usage_task.RunOnce();
    if (!users.ok()) return Json(500, json{{"error", std::string(users.status().message())}});
    return Json(200, json{{"ok", true}, {"users", *users}});
  }
  if (path == "/_sim/reset_job") {
    absl::StatusOr<ResetOutcome> outcome = t_.reset_job.RunNow();
    if (!outcome.ok()) return Json(500, json{{"error", std::string(outcome.status().message())}});
    if (outcome->cores_changed) t_.quick_apply.Run();
    return Json(200, json{{"ok", true}, {"reset", outcome->reset}});
  }
  return std::nullopt;
}

}  // namespace hsync::panelsim
