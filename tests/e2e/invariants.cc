#include "tests/e2e/invariants.h"

#include <algorithm>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "tests/support/test_mariadb.h"

namespace hsync::e2e {
namespace {

constexpr size_t kMaxListed = 12;

// A JSON value as the text MariaDB would print for the column (nullopt = NULL).
std::optional<std::string> JsonAsColumn(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "1" : "0";
  return value.dump();
}

std::string Show(const std::optional<std::string>& value) {
  return value.has_value() ? absl::StrCat("\"", value->substr(0, 60), "\"") : "NULL";
}

// "" and NULL are the same comment (the roster carries a string).
std::optional<std::string> EmptyAsNull(std::optional<std::string> value) {
  if (value.has_value() && value->empty()) return std::nullopt;
  return value;
}

}  // namespace

std::string UsageComparison::Summary() const {
  std::string text = absl::StrCat("users ", users, ", generated ", generated_bytes,
                                  " B, parent +", parent_increase_bytes, " B, lost ", lost_bytes,
                                  " B, counted twice ", doubled_bytes, " B");
  if (wiped_bytes > 0) {
    absl::StrAppend(&text, " (", wiped_bytes,
                    " B zeroed by the children's own resets before any collect: not expected)");
  }
  if (mismatched_users > 0) {
    absl::StrAppend(&text, "; ", mismatched_users, " users differ:");
    for (const std::string& m : mismatches) absl::StrAppend(&text, "\n  ", m);
  }
  return text;
}

absl::StatusOr<std::map<std::string, uint64_t>> ReadParentUsage(const std::string& database) {
  MariaDbOptions options = hsync::testing::SharedMariaDb().Options(database);
  options.connect_timeout = absl::Seconds(2);
  ASSIGN_OR_RETURN(auto conn, MariaDbConnection::Connect(options));
  ASSIGN_OR_RETURN(ResultSet rows, conn->Query("SELECT uuid, current_usage FROM user"));
  std::map<std::string, uint64_t> usage;
  for (const auto& row : rows.rows) {
    uint64_t bytes = 0;
    if (!row[0].has_value() || !row[1].has_value() || !absl::SimpleAtoi(*row[1], &bytes)) {
      return absl::InternalError("parent user row with a NULL or negative usage");
    }
    usage[*row[0]] = bytes;
  }
  return usage;
}

UsageComparison CompareUsage(const UsageSnapshot& before, const UsageSnapshot& after) {
  // Signed per-user sums; bytes stay far below 2^63 in tests.
  std::map<std::string, int64_t> generated;
  std::map<std::string, int64_t> increase;
  for (size_t c = 0; c < after.generated.size(); ++c) {
    for (const auto& [uuid, bytes] : after.generated[c]) {
      uint64_t base = 0;
      if (c < before.generated.size()) {
        auto it = before.generated[c].find(uuid);
        if (it != before.generated[c].end()) base = it->second;
      }
      generated[uuid] += static_cast<int64_t>(bytes) - static_cast<int64_t>(base);
    }
  }
  for (const auto& [uuid, bytes] : after.wiped) {
    auto it = before.wiped.find(uuid);
    const uint64_t base = it == before.wiped.end() ? 0 : it->second;
    generated[uuid] -= static_cast<int64_t>(bytes - base);
  }
  for (const auto& [uuid, bytes] : after.parent) {
    auto it = before.parent.find(uuid);
    const uint64_t base = it == before.parent.end() ? 0 : it->second;
    increase[uuid] = static_cast<int64_t>(bytes) - static_cast<int64_t>(base);
  }
  for (const auto& [uuid, bytes] : before.parent) {
    if (!after.parent.contains(uuid)) increase[uuid] = -static_cast<int64_t>(bytes);
  }
  UsageComparison result;
  for (const auto& [uuid, bytes] : after.wiped) {
    auto it = before.wiped.find(uuid);
    result.wiped_bytes += bytes - (it == before.wiped.end() ? 0 : it->second);
  }
  std::map<std::string, bool> users;
  for (const auto& [uuid, g] : generated) users[uuid] = true;
  for (const auto& [uuid, i] : increase) users[uuid] = true;
  for (const auto& [uuid, unused] : users) {
    const int64_t g = generated.contains(uuid) ? generated[uuid] : 0;
    const int64_t i = increase.contains(uuid) ? increase[uuid] : 0;
    if (g == 0 && i == 0) continue;
    ++result.users;
    result.generated_bytes += static_cast<uint64_t>(std::max<int64_t>(g, 0));
    result.parent_increase_bytes += static_cast<uint64_t>(std::max<int64_t>(i, 0));
    if (g == i) continue;
    ++result.mismatched_users;
    if (g > i) result.lost_bytes += static_cast<uint64_t>(g - i);
    if (i > g) result.doubled_bytes += static_cast<uint64_t>(i - g);
    if (result.mismatches.size() < kMaxListed) {
      result.mismatches.push_back(absl::StrCat(uuid, ": parent +", i, " B, generated ", g,
                                               " B (", g > i ? "lost " : "counted twice ",
                                               g > i ? g - i : i - g, " B)"));
    }
  }
  return result;
}

std::vector<std::string> RosterDifferences(const nlohmann::json& parent_users,
                                           const std::vector<ChildUserRow>& child_rows,
                                           const std::set<std::string>& local_resets) {
  std::vector<std::string> differences;
  auto note = [&](std::string text) {
    if (differences.size() < kMaxListed) differences.push_back(std::move(text));
  };
  std::map<std::string, const ChildUserRow*> local;
  for (const ChildUserRow& row : child_rows) local[row.uuid] = &row;
  std::set<std::string> on_parent;
  for (const nlohmann::json& user : parent_users) {
    const std::string uuid = user.value("uuid", "");
    on_parent.insert(uuid);
    auto found = local.find(uuid);
    if (found == local.end()) {
      note(absl::StrCat(uuid, ": missing on the child"));
      continue;
    }
    const auto& columns = found->second->columns;
    std::map<std::string, std::optional<std::string>> want;
    for (const char* key : {"name", "package_days", "mode", "telegram_id", "lang", "ed25519_private_key",
                            "ed25519_public_key", "wg_pk", "wg_pub", "wg_psk", "start_date"}) {
      want[key] = JsonAsColumn(user.value(key, nlohmann::json()));
    }
    want["comment"] = EmptyAsNull(JsonAsColumn(user.value("comment", nlohmann::json())));
    const nlohmann::json limit = user.value("usage_limit_GB", nlohmann::json());
    if (limit.is_number()) {
      absl::StatusOr<uint64_t> bytes = PanelGiBToBytes(limit.get<double>());
      want["usage_limit"] = bytes.ok() ? std::optional<std::string>(absl::StrCat(*bytes)) : "?";
    }
    const std::optional<std::string> reset = JsonAsColumn(user.value("last_reset_time", nlohmann::json()));
    want["last_reset_time"] = reset.has_value() ? std::optional<std::string>(reset->substr(0, 10))
                                                : std::nullopt;
    want["enable"] = std::string(user.value("is_active", false) ? "1" : "0");
    for (const auto& [column, expected] : want) {
      auto it = columns.find(column);
      std::optional<std::string> actual = it == columns.end() ? std::nullopt : it->second;
      if (column == "comment") actual = EmptyAsNull(actual);
      if (actual == expected) continue;
      if (column == "last_reset_time" && local_resets.contains(uuid) && actual.has_value() &&
          (!expected.has_value() || *actual >= *expected)) {
        continue;  // the child's own periodic reset moved it; the parent's comes with its next change
      }
      note(absl::StrCat(uuid, ": ", column, " is ", Show(actual), " on the child, ", Show(expected),
                        " on the parent", column == "enable" ? " (is_active)" : ""));
    }
  }
  for (const ChildUserRow& row : child_rows) {
    if (!on_parent.contains(row.uuid)) note(absl::StrCat(row.uuid, ": on the child only"));
  }
  return differences;
}

std::vector<std::string> CoreDifferences(const nlohmann::json& parent_users,
                                         const nlohmann::json& child_cores,
                                         const nlohmann::json& child_users,
                                         const std::set<std::string>& excluded) {
  std::vector<std::string> differences;
  auto note = [&](std::string text) {
    if (differences.size() < kMaxListed) differences.push_back(std::move(text));
  };
  auto lower = [](std::string s) { return absl::AsciiStrToLower(s); };
  std::map<std::string, bool> parent_active;
  for (const nlohmann::json& user : parent_users) {
    const std::string uuid = lower(user.value("uuid", ""));
    if (!excluded.contains(uuid)) parent_active[uuid] = user.value("is_active", false);
  }
  for (const char* core : {"xray", "singbox", "wireguard"}) {
    std::set<std::string> members;
    if (child_cores.contains(core) && child_cores[core].is_array()) {
      for (const nlohmann::json& m : child_cores[core]) {
        if (m.is_string()) members.insert(lower(m.get<std::string>()));
      }
    }
    for (const auto& [uuid, active] : parent_active) {
      const bool in = members.contains(uuid);
      if (in != active) {
        note(absl::StrCat(uuid, ": ", in ? "in" : "not in", " ", core, " on the child, ",
                          active ? "active" : "inactive", " on the parent"));
      }
    }
    for (const std::string& uuid : members) {
      if (!parent_active.contains(uuid) && !excluded.contains(uuid)) {
        note(absl::StrCat(uuid, ": in ", core, " on the child, no such user on the parent"));
      }
    }
  }
  std::map<std::string, bool> child_active;
  for (const nlohmann::json& user : child_users) {
    child_active[lower(user.value("uuid", ""))] = user.value("is_active", false);
  }
  for (const auto& [uuid, active] : parent_active) {
    auto found = child_active.find(uuid);
    if (found == child_active.end()) continue;  // RosterDifferences reports it
    if (found->second != active) {
      note(absl::StrCat(uuid, ": the child panel says is_active ", found->second ? "true" : "false",
                        ", the parent ", active ? "true" : "false"));
    }
  }
  return differences;
}

}  // namespace hsync::e2e
