#include "tests/panelsim/fault_injector.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/panelsim/shutdown_signal.h"

namespace hsync::panelsim {

bool IsKnownRouteName(std::string_view route) {
  static const std::set<std::string, std::less<>> kRoutes = {
      "ping", "info", "list_users", "create_user", "get_user", "patch_user", "delete_user"};
  return kRoutes.count(route) > 0;
}

absl::StatusOr<FaultRule> ParseFaultRule(const nlohmann::json& body) {
  if (!body.is_object()) return absl::InvalidArgumentError("the fault rule must be a JSON object");
  FaultRule rule;
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    const auto rate = [&](double* out) -> absl::Status {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
        return absl::InvalidArgumentError(absl::StrCat(key, " must be a number in [0, 1]"));
      }
      *out = v.get<double>();
      return absl::OkStatus();
    };
    const auto count = [&](auto* out, int64_t min) -> absl::Status {
      if (!v.is_number_integer() || v.get<int64_t>() < min) {
        return absl::InvalidArgumentError(absl::StrCat(key, " must be an integer >= ", min));
      }
      *out = static_cast<std::remove_reference_t<decltype(*out)>>(v.get<int64_t>());
      return absl::OkStatus();
    };
    absl::Status status;
    if (key == "route") {
      if (!v.is_string() || (v.get<std::string>() != "*" && !IsKnownRouteName(v.get<std::string>()))) {
        return absl::InvalidArgumentError(
            "route must be \"*\" or one of ping info list_users create_user get_user patch_user "
            "delete_user");
      }
      rule.route = v.get<std::string>();
    } else if (key == "latency_ms") {
      status = count(&rule.latency_ms, 0);
    } else if (key == "after_latency_ms") {
      status = count(&rule.after_latency_ms, 0);
    } else if (key == "error_status") {
      status = count(&rule.error_status, 100);
      if (status.ok() && rule.error_status > 599) {
        status = absl::InvalidArgumentError("error_status must be an HTTP status");
      }
    } else if (key == "remaining") {
      status = count(&rule.remaining, 0);
    } else if (key == "error_rate") {
      status = rate(&rule.error_rate);
    } else if (key == "timeout_rate") {
      status = rate(&rule.timeout_rate);
    } else if (key == "drop_rate") {
      status = rate(&rule.drop_rate);
    } else if (key == "garbage_rate") {
      status = rate(&rule.garbage_rate);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown field ", key));
    }
    if (!status.ok()) return status;
  }
  return rule;
}

void FaultInjector::Add(FaultRule rule) {
  absl::MutexLock lock(&mu_);
  rules_.push_back(std::move(rule));
}

void FaultInjector::Clear() {
  absl::MutexLock lock(&mu_);
  rules_.clear();
  ++clear_generation_;
}

void FaultInjector::HoldUnlessCleared(absl::Duration duration) {
  int64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    generation = clear_generation_;
  }
  const absl::Time deadline = absl::Now() + duration;
  while (absl::Now() < deadline) {
    if (!SleepUnlessStopping(std::min(absl::Milliseconds(50), deadline - absl::Now()))) return;
    absl::MutexLock lock(&mu_);
    if (clear_generation_ != generation) return;
  }
}

size_t FaultInjector::RuleCount() const {
  absl::MutexLock lock(&mu_);
  return rules_.size();
}

FaultDecision FaultInjector::Decide(std::string_view route) {
  FaultDecision decision;
  absl::MutexLock lock(&mu_);
  for (FaultRule& rule : rules_) {
    if (rule.remaining == 0) continue;
    if (rule.route != "*" && rule.route != route) continue;
    if (rule.remaining > 0) --rule.remaining;
    decision.latency_ms += rule.latency_ms;
    decision.after_latency_ms += rule.after_latency_ms;
    if (decision.action != FaultAction::kNone) continue;
    const auto fires = [&](double rate) {
      return rate > 0 && (rate >= 1 || absl::Uniform<double>(rng_, 0.0, 1.0) < rate);
    };
    if (fires(rule.error_rate)) {
      decision.action = FaultAction::kError;
      decision.error_status = rule.error_status;
    } else if (fires(rule.timeout_rate)) {
      decision.action = FaultAction::kTimeout;
    } else if (fires(rule.drop_rate)) {
      decision.action = FaultAction::kDrop;
    } else if (fires(rule.garbage_rate)) {
      decision.action = FaultAction::kGarbage;
    }
  }
  rules_.erase(std::remove_if(rules_.begin(), rules_.end(),
                              [](const FaultRule& r) { return r.remaining == 0; }),
               rules_.end());
  return decision;
}

}  // namespace hsync::panelsim
