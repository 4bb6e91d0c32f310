// One child server of an end-to-end system: its panel database (Hiddify
// schema, in the shared test MariaDB), a panelsim child generating traffic
// into it (the panel's own read-modify-write, with a gap; optional periodic
// resets), a TCP proxy the test controls between the reporter and the hub,
// and the reporter.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/e2e/reporter_runner.h"
#include "tests/e2e/tcp_proxy.h"
#include "tests/support/panelsim_runner.h"

namespace hsync::e2e {

struct ChildTraffic {
  int interval_ms = 200;          // one tick per interval
  int users_per_tick = 5;
  uint64_t max_bytes = 20'000'000;  // per user per tick
  int rmw_gap_ms = 20;            // between reading and writing a row
  int reset_interval_ms = 0;      // >0: the panel's periodic-reset check
};

struct ChildNodeOptions {
  std::string node_id;
  std::string token;
  int hub_port = 0;
  ChildTraffic traffic;
  uint64_t seed = 0;
  std::string collect_interval = "5s";
  int apply_duration_ms = 0;  // >0: each apply run of the child panel takes this long
};

// A user row of the child panel, the columns the roster governs.
struct ChildUserRow {
  std::string uuid;
  std::map<std::string, std::optional<std::string>> columns;  // column -> text (nullopt = NULL)
};

// The bytes panelsim `panel` generated per user so far (GET /_sim/traffic);
// `who` names it in errors.
absl::StatusOr<std::map<std::string, uint64_t>> GeneratedBytes(hsync::testing::PanelsimRunner& panel,
                                                               const std::string& who);

class ChildNode {
 public:
  // Starts the proxy, the child panelsim (fresh database, traffic paused) and
  // the reporter.
  static absl::StatusOr<std::unique_ptr<ChildNode>> Start(ChildNodeOptions options);
  ~ChildNode();

  const std::string& node_id() const { return options_.node_id; }
  hsync::testing::PanelsimRunner& panel() { return *panel_; }
  ReporterRunner& reporter() { return *reporter_; }
  TcpProxy& proxy() { return *proxy_; }
  const std::string& database() const { return panel_->options().database; }

  // Pauses/resumes traffic generation (a pause waits for the tick in flight).
  absl::Status SetTraffic(bool enabled);
  // Bytes the generator has added per user since panelsim started.
  absl::StatusOr<std::map<std::string, uint64_t>> Generated();
  // Every user row of the child panel's database.
  absl::StatusOr<std::vector<ChildUserRow>> Users();

 private:
  ChildNode() = default;
  ChildNodeOptions options_;
  std::unique_ptr<TcpProxy> proxy_;
  std::unique_ptr<hsync::testing::PanelsimRunner> panel_;
  std::unique_ptr<ReporterRunner> reporter_;
};

// The synced columns of the child's user table the roster check compares.
const std::vector<std::string>& RosterColumns();

}  // namespace hsync::e2e
