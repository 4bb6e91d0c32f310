// The reporter's Prometheus metrics. Collect durations, collect failures and
// bytes collected are counted live; everything else (hub connection, outbox,
// roster changes, guard trips, held removals, skipped users, apply trigger) is read from the status board at
// scrape time, so /metrics and `status` never disagree. Names start with
// hsync_reporter_.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "hiddify_sync/v1/reporter_status.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace hsync::reporter {

// Thread-safe.
class ReporterInstruments {
 public:
  ReporterInstruments();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // A collect finished: how long it took, whether it worked, and the bytes
  // and users it wrote to the outbox.
  void CollectFinished(absl::Duration took, bool ok, uint64_t bytes, uint64_t users);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* collect_seconds_;
  prometheus::Counter* collect_failures_;
  prometheus::Counter* collected_bytes_;
  prometheus::Counter* collected_usages_;
};

// The metric families derived from a status snapshot (as of `now`).
std::vector<prometheus::MetricFamily> ReporterStatusMetrics(
    const hiddify_sync::v1::ReporterStatusReply& status, absl::Time now);

}  // namespace hsync::reporter
