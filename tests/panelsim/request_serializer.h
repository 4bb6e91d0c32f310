// The panel serves one API request at a time (PANEL.md §1: one
// single-threaded process): Serve() runs a request's handler under one lock,
// pads the request to at least its simulated cost (per route; a user list
// also per user listed; none for routing errors) while still holding it, and adds the time held to the serial
// clock (busy_ms). Thread-safe.
#pragma once

#include <functional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "tests/panelsim/http_types.h"
#include "tests/panelsim/sim_counters.h"

namespace hsync::panelsim {

struct RequestCosts {
  int patch_ms = 0;  // PATCH and DELETE of a user
  int post_ms = 0;   // POST of a user
  int get_ms = 0;    // every other route (GET of a user or the list, ping, info)
  int list_us_per_user = 0;
};

class RequestSerializer {
 public:
  RequestSerializer(RequestCosts costs, SimCounters& counters) : costs_(costs), counters_(counters) {}

  // Runs `handle` for route `route` (the panel's route name, empty for
  // routing errors) one at a time; returns its answer after the cost.
  SimResponse Serve(const std::string& route, const std::function<SimResponse()>& handle);

 private:
  const RequestCosts costs_;
  SimCounters& counters_;
  absl::Mutex serve_mu_;
};

}  // namespace hsync::panelsim
