#include "tests/panelsim/periodic_task.h"

#include "tests/panelsim/shutdown_signal.h"

namespace hsync::panelsim {

void PeriodicTask::Start(absl::Duration interval, std::function<void()> tick) {
  Stop();
  stop_ = new absl::Notification();
  absl::Notification* stop = stop_;
  thread_ = std::thread([stop, interval, tick = std::move(tick)] {
    while (!stop->WaitForNotificationWithTimeout(interval)) {
      if (ShuttingDown()) return;
      tick();
    }
  });
}

void PeriodicTask::Stop() {
  if (stop_ == nullptr) return;
  stop_->Notify();
  if (thread_.joinable()) thread_.join();
  delete stop_;
  stop_ = nullptr;
}

}  // namespace hsync::panelsim
