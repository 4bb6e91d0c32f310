#include "tests/e2e/bench_support.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace hsync::e2e {

ParentCalls ParentCalls::Minus(const ParentCalls& earlier) const {
  ParentCalls d;
  d.list_users = list_users - earlier.list_users;
  d.get_user = get_user - earlier.get_user;
  d.patch_user = patch_user - earlier.patch_user;
  d.other = other - earlier.other;
  d.usage_patches = usage_patches - earlier.usage_patches;
  d.busy_ms = busy_ms - earlier.busy_ms;
  d.sessions_created = sessions_created - earlier.sessions_created;
  return d;
}

absl::StatusOr<ParentCalls> ReadParentCalls(hsync::testing::PanelsimRunner& panel) {
  ASSIGN_OR_RETURN(auto response, panel.Control("GET", "/_sim/counters"));
  if (response.status != 200) {
    return absl::InternalError(absl::StrCat("GET /_sim/counters -> ", response.status));
  }
  ParentCalls calls;
  try {
    const nlohmann::json body = nlohmann::json::parse(response.body);
    for (const auto& [key, value] : body.at("calls").items()) {
      const uint64_t n = value.get<uint64_t>();
      if (key == "GET list_users") {
        calls.list_users += n;
      } else if (key == "GET get_user") {
        calls.get_user += n;
      } else if (key == "PATCH patch_user") {
        calls.patch_user += n;
      } else {
        calls.other += n;
      }
    }
    calls.usage_patches = body.value("usage_patches", uint64_t{0});
    calls.busy_ms = body.value("busy_ms", uint64_t{0});
    calls.sessions_created = body.value("sessions_created", uint64_t{0});
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat("/_sim/counters: ", e.what()));
  }
  return calls;
}

absl::StatusOr<ProcSample> SampleProcess(int pid) {
  std::ifstream stat_file(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream stat_text;
  stat_text << stat_file.rdbuf();
  const std::string stat = stat_text.str();
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return absl::NotFoundError(absl::StrCat("no process ", pid));
  // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InternalError(absl::StrCat("cannot parse /proc/", pid, "/stat"));
  }
  ProcSample sample;
  sample.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      uint64_t kb = 0;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kb)) sample.rss_bytes = kb * 1024;
    }
  }
  return sample;
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  return values[static_cast<size_t>(std::lround(rank))];
}

}  // namespace hsync::e2e
