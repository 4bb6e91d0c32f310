// panelsim's command line (tests/panelsim/README.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "tests/panelsim/panel_generation.h"

namespace hsync::panelsim {

struct SimOptions {
  std::string mysql_socket;
  std::string database;
  std::string listen = "127.0.0.1";
  int port = 0;
  std::string port_file;
  std::string proxy_path = "proxy";
  std::string owner_uuid;
  bool create_schema = false;
  int demo_users = 0;
  bool control = false;
  std::optional<absl::CivilDay> today;
  int threads = 16;
  int traffic_interval_ms = 0;
  int traffic_users_per_tick = 10;
  int64_t traffic_max_bytes = 50'000'000;
  int traffic_rmw_gap_ms = 0;
  int reset_interval_ms = 0;
  uint64_t seed = 0;
  // A real Hiddify 12.3 server unless told otherwise (README.md, "A Hiddify server").
  PanelGeneration generation = PanelGeneration::k12_3;
  CoreType core_type = CoreType::kXray;
  int usage_task_interval_ms = 60000;  // 0 = off
  int apply_duration_ms = 10000;
  // Simulated work per API request (the serial cost model).
  int patch_cost_ms = 0;
  int post_cost_ms = 0;
  int get_cost_ms = 0;
  int list_cost_us_per_user = 0;
};

// Parses argv ("--flag value" or "--flag=value"); InvalidArgument names the bad flag.
absl::StatusOr<SimOptions> ParseSimOptions(int argc, char** argv);

// The usage text.
const char* SimUsage();

}  // namespace hsync::panelsim
