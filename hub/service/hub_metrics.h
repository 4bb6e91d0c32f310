// The hub's Prometheus metrics. Live instruments (parent requests by kind and
// HTTP status, request and per-user apply durations) are counted as they
// happen; everything else is read from a HubStatus answer at scrape time, so
// /metrics and GetStatus never disagree. Metric names start with hsync_hub_.
#pragma once

#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/parent/parent_client.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace hsync::hub {

// Thread-safe: the applier's and the poller's threads report concurrently.
class HubInstruments {
 public:
  HubInstruments();

  // The registry to serve (holds the live instruments).
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One request to the parent finished (ParentClientOptions::on_call).
  void ParentCall(const ParentCallRecord& call);
  // One user's apply attempt finished (ApplierHooks::on_user_applied).
  void UserApplied(absl::Duration took, bool applied);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* parent_requests_;
  prometheus::Family<prometheus::Histogram>* parent_request_seconds_;
  prometheus::Family<prometheus::Histogram>* apply_user_seconds_;
};

// The metric families derived from `status` (as of `now`).
std::vector<prometheus::MetricFamily> HubStatusMetrics(const hiddify_sync::v1::HubStatus& status,
                                                       absl::Time now);

}  // namespace hsync::hub
