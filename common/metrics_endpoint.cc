#include "common/metrics_endpoint.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"

namespace hsync {
namespace {

// The registry's metrics, then the snapshot's, in one scrape.
class CombinedCollectable : public prometheus::Collectable {
 public:
  CombinedCollectable(std::shared_ptr<prometheus::Registry> registry, MetricsSnapshot snapshot)
      : registry_(std::move(registry)), snapshot_(std::move(snapshot)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    if (registry_ != nullptr) families = registry_->Collect();
    if (snapshot_) {
      for (prometheus::MetricFamily& family : snapshot_()) families.push_back(std::move(family));
    }
    return families;
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  MetricsSnapshot snapshot_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry,
    MetricsSnapshot snapshot) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->collectable_ =
      std::make_shared<CombinedCollectable>(std::move(registry), std::move(snapshot));
  // prometheus-cpp (civetweb) reports a failed bind by throwing; it stops here.
  try {
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, ": ", e.what()));
  }
  endpoint->exposer_->RegisterCollectable(endpoint->collectable_);
  const std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", listen));
  }
  endpoint->port_ = ports.front();
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() = default;

}  // namespace hsync
