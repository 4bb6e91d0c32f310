// Which Hiddify server panelsim plays (README.md, "A Hiddify server"): the
// panel generation and the proxy core type.
#pragma once

#include <optional>
#include <string>

namespace hsync::panelsim {

// 12.3: API writes start no apply run, usage added atomically by add_usage_json.
// 12.2 (= 11.x..12.2): every API write of a user starts one apply run.
// 10.80: usage added by read-modify-write; no add_usage_json procedure.
enum class PanelGeneration { k12_3, k12_2, k10_80 };

// str_config core_type: xray (default; live user set through driver calls) or
// singbox (every protocol served by sing-box, which follows only apply runs).
enum class CoreType { kXray, kSingbox };

std::optional<PanelGeneration> ParsePanelGeneration(const std::string& text);
// "12.3.0", "12.2.0", "10.80.0": what panel/info answers.
const char* PanelVersionOf(PanelGeneration generation);
// The usage task adds with add_usage_json (12.x) rather than read-modify-write.
bool HasAddUsageJson(PanelGeneration generation);
// Every API write of a user starts an apply run in the background (<= 12.2).
bool ApiWritesStartApplyRuns(PanelGeneration generation);

std::optional<CoreType> ParseCoreType(const std::string& text);
const char* CoreTypeName(CoreType type);

}  // namespace hsync::panelsim
