#include "common/metrics_endpoint.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "common/logging.h"
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

// civetweb's accept loop polls with a 2 s quantum and is not woken by a
// stop: connecting to it makes the poll return, so stopping takes
// milliseconds instead of up to 2 s (a faster `systemctl stop`).
void PokeListener(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    ::close(fd);
    if (connected) break;
  }
  freeaddrinfo(found);
}

// The host of `listen` to connect to (any-address -> loopback).
std::string WakeHost(const std::string& listen) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(listen, &host, &port) || host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

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
  endpoint->wake_host_ = WakeHost(listen);
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (exposer_ == nullptr) return;
  std::atomic<bool> stopped{false};
  std::thread poker([this, &stopped] {
    while (!stopped.load()) {
      PokeListener(wake_host_, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped = true;
  poker.join();
}

std::unique_ptr<MetricsEndpoint> StartMetricsOrLog(const std::string& listen,
                                                   std::shared_ptr<prometheus::Registry> registry,
                                                   MetricsSnapshot snapshot) {
  if (listen.empty()) return nullptr;
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start(listen, std::move(registry), std::move(snapshot));
  if (!endpoint.ok()) {
    // Syncing matters more than being watched: run on, but say it loudly.
    LogError(absl::StrCat(endpoint.status().message(), "; /metrics is OFF (set metrics.listen "
                                                       "to a free address, or \"\" to silence)"));
    return nullptr;
  }
  LogInfo(absl::StrCat("metrics: serving Prometheus metrics on ", listen, " (port ",
                       (*endpoint)->port(), ") at /metrics"));
  return *std::move(endpoint);
}

}  // namespace hsync
