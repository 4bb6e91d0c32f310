#include "common/metric_families.h"

#include "common/proto_time.h"

namespace hsync {
namespace {

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

}  // namespace

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Gauge);
}

prometheus::MetricFamily CounterFamily(std::string name, std::string help) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Counter);
}

void AddSample(prometheus::MetricFamily& family, double value, const MetricLabels& labels) {
  prometheus::ClientMetric metric;
  for (const auto& [name, label_value] : labels) metric.label.push_back({name, label_value});
  if (family.type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  prometheus::MetricFamily family = GaugeFamily(std::move(name), std::move(help));
  AddSample(family, value);
  return family;
}

prometheus::MetricFamily Counter(std::string name, std::string help, double value) {
  prometheus::MetricFamily family = CounterFamily(std::move(name), std::move(help));
  AddSample(family, value);
  return family;
}

double UnixSeconds(absl::Time t) {
  if (t == absl::InfinitePast()) return 0;
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

double UnixSeconds(const google::protobuf::Timestamp& ts) {
  return UnixSeconds(FromProtoTimestamp(ts));
}

double AgeSeconds(absl::Time since, absl::Time now) {
  if (since == absl::InfinitePast() || since > now) return 0;
  return absl::ToDoubleSeconds(now - since);
}

}  // namespace hsync
