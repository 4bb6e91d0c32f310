// Scrapes a daemon's Prometheus /metrics over HTTP (libcurl) and parses the
// text format into series -> value, the series written as Prometheus prints
// it: `name` or `name{label="value",...}` (labels in the daemon's order).
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace hsync::testing {

struct Scrape {
  std::string body;                      // the raw answer
  std::map<std::string, double> series;  // every sample line
  // The value of `series`, or -1 when absent (every metric here is >= 0).
  double Get(const std::string& name) const;
};

// GET http://127.0.0.1:<port>/metrics. Not 200, or a line that is neither a
// comment nor "<series> <number>" -> an error naming it.
absl::StatusOr<Scrape> ScrapeMetrics(int port);

}  // namespace hsync::testing
