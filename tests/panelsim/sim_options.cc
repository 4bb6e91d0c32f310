#include "tests/panelsim/sim_options.h"

#include <functional>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"

namespace hsync::panelsim {

const char* SimUsage() {
  return "usage: panelsim --mysql-socket PATH --database NAME\n"
         "  [--listen 127.0.0.1] [--port 0] [--port-file FILE] [--proxy-path proxy]\n"
         "  [--owner-uuid UUID] [--create-schema] [--demo-users N] [--control]\n"
         "  [--today YYYY-MM-DD] [--threads 16] [--traffic-interval-ms N]\n"
         "  [--traffic-users-per-tick 10] [--traffic-max-bytes 50000000]\n"
         "  [--traffic-rmw-gap-ms N] [--reset-interval-ms N] [--seed N]\n"
         "  [--generation 12.3|12.2|10.80] [--core-type xray|singbox]\n"
         "  [--usage-task-interval-ms 60000] [--apply-duration-ms 10000]\n"
         "  [--patch-cost-ms 0] [--post-cost-ms 0] [--get-cost-ms 0]\n"
         "  [--list-cost-us-per-user 0]\n";
}

absl::StatusOr<SimOptions> ParseSimOptions(int argc, char** argv) {
  SimOptions o;
  using Setter = std::function<bool(const std::string&)>;
  const auto integer = [](auto* out) {
    return Setter([out](const std::string& v) {
      int64_t n = 0;
      if (!absl::SimpleAtoi(v, &n) || n < 0) return false;
      *out = static_cast<std::remove_reference_t<decltype(*out)>>(n);
      return true;
    });
  };
  const auto text = [](std::string* out) {
    return Setter([out](const std::string& v) {
      *out = v;
      return true;
    });
  };
  std::map<std::string, Setter> with_value = {
      {"--mysql-socket", text(&o.mysql_socket)},
      {"--database", text(&o.database)},
      {"--listen", text(&o.listen)},
      {"--port", integer(&o.port)},
      {"--port-file", text(&o.port_file)},
      {"--proxy-path", text(&o.proxy_path)},
      {"--owner-uuid", text(&o.owner_uuid)},
      {"--demo-users", integer(&o.demo_users)},
      {"--today",
       [&o](const std::string& v) {
         absl::StatusOr<absl::CivilDay> day = ParsePanelDate(v);
         if (!day.ok()) return false;
         o.today = *day;
         return true;
       }},
      {"--threads", integer(&o.threads)},
      {"--traffic-interval-ms", integer(&o.traffic_interval_ms)},
      {"--traffic-users-per-tick", integer(&o.traffic_users_per_tick)},
      {"--traffic-max-bytes", integer(&o.traffic_max_bytes)},
      {"--traffic-rmw-gap-ms", integer(&o.traffic_rmw_gap_ms)},
      {"--reset-interval-ms", integer(&o.reset_interval_ms)},
      {"--seed", integer(&o.seed)},
      {"--generation",
       [&o](const std::string& v) {
         std::optional<PanelGeneration> g = ParsePanelGeneration(v);
         if (!g.has_value()) return false;
         o.generation = *g;
         return true;
       }},
      {"--core-type",
       [&o](const std::string& v) {
         std::optional<CoreType> t = ParseCoreType(v);
         if (!t.has_value()) return false;
         o.core_type = *t;
         return true;
       }},
      {"--usage-task-interval-ms", integer(&o.usage_task_interval_ms)},
      {"--apply-duration-ms", integer(&o.apply_duration_ms)},
      {"--patch-cost-ms", integer(&o.patch_cost_ms)},
      {"--post-cost-ms", integer(&o.post_cost_ms)},
      {"--get-cost-ms", integer(&o.get_cost_ms)},
      {"--list-cost-us-per-user", integer(&o.list_cost_us_per_user)},
  };
  std::map<std::string, bool*> switches = {{"--create-schema", &o.create_schema},
                                           {"--control", &o.control}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline_value = false;
    if (const size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    if (auto it = switches.find(arg); it != switches.end()) {
      *it->second = !has_inline_value || value == "true" || value == "1";
      continue;
    }
    auto it = with_value.find(arg);
    if (it == with_value.end()) return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    if (!has_inline_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      value = argv[++i];
    }
    if (!it->second(value)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value for ", arg, ": \"", value, "\""));
    }
  }
  if (o.mysql_socket.empty()) return absl::InvalidArgumentError("--mysql-socket is required");
  if (o.database.empty()) return absl::InvalidArgumentError("--database is required");
  if (o.proxy_path.empty() || o.proxy_path.find('/') != std::string::npos) {
    return absl::InvalidArgumentError("--proxy-path must be one non-empty path segment");
  }
  if (o.threads < 1) o.threads = 1;
  if (o.port > 65535) return absl::InvalidArgumentError("--port must be 0..65535");
  return o;
}

}  // namespace hsync::panelsim
