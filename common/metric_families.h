// Small builders for metric families computed at scrape time (from a status
// snapshot), so the daemons need not mirror every status field in a live
// metric object. Names follow Prometheus conventions: *_total for counters,
// base units (bytes, seconds).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "prometheus/metric_family.h"

namespace hsync {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A family of one type; add samples with AddSample().
prometheus::MetricFamily GaugeFamily(std::string name, std::string help);
prometheus::MetricFamily CounterFamily(std::string name, std::string help);
// Appends a sample (gauge or counter value, by the family's type).
void AddSample(prometheus::MetricFamily& family, double value, const MetricLabels& labels = {});

// One-sample families.
prometheus::MetricFamily Gauge(std::string name, std::string help, double value);
prometheus::MetricFamily Counter(std::string name, std::string help, double value);

// Seconds since the Unix epoch; 0 for InfinitePast / an unset timestamp
// (never happened).
double UnixSeconds(absl::Time t);
double UnixSeconds(const google::protobuf::Timestamp& ts);
// Seconds from `since` to `now`; 0 for InfinitePast.
double AgeSeconds(absl::Time since, absl::Time now);

}  // namespace hsync
