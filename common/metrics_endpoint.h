// Serves Prometheus metrics (text exposition format 0.0.4) over plain HTTP at
// http://<listen>/metrics. Each scrape returns the registry's live metrics
// (counters/histograms updated by the daemon as things happen) followed by
// whatever `snapshot` builds at that moment (gauges and totals read from the
// daemon's status). Thread-safe; the server runs on its own threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace hsync {

using MetricsSnapshot = std::function<std::vector<prometheus::MetricFamily>()>;

class MetricsEndpoint {
 public:
  // Listens on `listen` ("host:port", "[v6]:port"; port 0 = any free port).
  // `registry` may be null (snapshot only); `snapshot` may be empty.
  // Unavailable when the address cannot be bound (message names it).
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen, std::shared_ptr<prometheus::Registry> registry,
      MetricsSnapshot snapshot);
  ~MetricsEndpoint();  // stops serving

  // The port actually bound.
  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  std::string wake_host_;  // where to connect to wake the server's accept loop
  std::shared_ptr<prometheus::Collectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// What both daemons do with [metrics] listen: "" -> nullptr (off); otherwise
// Start(), logging where it serves, or logging an error and returning nullptr
// when it cannot listen (the daemon runs on without /metrics).
std::unique_ptr<MetricsEndpoint> StartMetricsOrLog(const std::string& listen,
                                                   std::shared_ptr<prometheus::Registry> registry,
                                                   MetricsSnapshot snapshot);

}  // namespace hsync
