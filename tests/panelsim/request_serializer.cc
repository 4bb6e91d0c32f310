#include "tests/panelsim/request_serializer.h"

#include "absl/time/clock.h"
#include "tests/panelsim/shutdown_signal.h"

namespace hsync::panelsim {

SimResponse RequestSerializer::Serve(const std::string& route,
                                     const std::function<SimResponse()>& handle) {
  absl::MutexLock lock(&serve_mu_);
  const absl::Time start = absl::Now();
  SimResponse response = handle();
  absl::Duration cost;
  if (route.empty()) {
    cost = absl::ZeroDuration();
  } else if (route == "patch_user" || route == "delete_user") {
    cost = absl::Milliseconds(costs_.patch_ms);
  } else if (route == "create_user") {
    cost = absl::Milliseconds(costs_.post_ms);
  } else {
    cost = absl::Milliseconds(costs_.get_ms);
  }
  if (route == "list_users") cost += absl::Microseconds(costs_.list_us_per_user) * response.listed_users;
  const absl::Duration remaining = cost - (absl::Now() - start);
  if (remaining > absl::ZeroDuration()) SleepUnlessStopping(remaining);
  counters_.AddBusy(absl::Now() - start);
  return response;
}

}  // namespace hsync::panelsim
