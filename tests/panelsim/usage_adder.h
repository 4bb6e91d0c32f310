// How the panel's usage task writes the bytes it took from the cores into
// the user table (PANEL.md §3). Two generations, two classes:
// 12.x: `CALL add_usage_json(json, now)` (atomic `current_usage + b` per user);
// 10.80 and older: Python read-modify-write (load, gap, write absolute).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "tests/panelsim/panel_generation.h"

namespace hsync::panelsim {

class UsageAdder {
 public:
  virtual ~UsageAdder() = default;
  // Adds `bytes` per uuid (unknown uuids are skipped), sets last_online =
  // `now` and start_date = today where it was NULL.
  virtual absl::Status Add(const std::map<std::string, int64_t>& bytes, absl::CivilSecond now) = 0;
};

// add_usage_json, as migration _v103 creates it.
class AtomicUsageAdder : public UsageAdder {
 public:
  absl::Status Add(const std::map<std::string, int64_t>& bytes, absl::CivilSecond now) override;
};

// Loads the rows, waits `gap_ms`, writes current_usage = loaded + bytes.
class ReadModifyWriteUsageAdder : public UsageAdder {
 public:
  explicit ReadModifyWriteUsageAdder(int gap_ms) : gap_ms_(gap_ms) {}
  absl::Status Add(const std::map<std::string, int64_t>& bytes, absl::CivilSecond now) override;

 private:
  const int gap_ms_;
};

std::unique_ptr<UsageAdder> MakeUsageAdder(PanelGeneration generation, int rmw_gap_ms);

}  // namespace hsync::panelsim
