#include "tests/panelsim/panel_generation.h"

namespace hsync::panelsim {

std::optional<PanelGeneration> ParsePanelGeneration(const std::string& text) {
  if (text == "12.3" || text == "12.3.0") return PanelGeneration::k12_3;
  if (text == "12.2" || text == "12.2.0" || text == "11") return PanelGeneration::k12_2;
  if (text == "10.80" || text == "10.80.0") return PanelGeneration::k10_80;
  return std::nullopt;
}

const char* PanelVersionOf(PanelGeneration generation) {
  switch (generation) {
    case PanelGeneration::k12_3: return "12.3.0";
    case PanelGeneration::k12_2: return "12.2.0";
    case PanelGeneration::k10_80: return "10.80.0";
  }
  return "12.3.0";
}

bool HasAddUsageJson(PanelGeneration generation) { return generation != PanelGeneration::k10_80; }

bool ApiWritesStartApplyRuns(PanelGeneration generation) {
  return generation != PanelGeneration::k12_3;
}

std::optional<CoreType> ParseCoreType(const std::string& text) {
  if (text == "xray") return CoreType::kXray;
  if (text == "singbox") return CoreType::kSingbox;
  return std::nullopt;
}

const char* CoreTypeName(CoreType type) { return type == CoreType::kXray ? "xray" : "singbox"; }

}  // namespace hsync::panelsim
