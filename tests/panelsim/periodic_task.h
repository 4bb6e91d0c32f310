// Runs a callback every `interval` on its own thread until Stop() (or shutdown).
#pragma once

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace hsync::panelsim {

class PeriodicTask {
 public:
  PeriodicTask() = default;
  ~PeriodicTask() { Stop(); }
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // Starts calling `tick` every `interval` (the first call after one interval).
  void Start(absl::Duration interval, std::function<void()> tick);
  // Stops and joins; a tick in progress finishes first.
  void Stop();

 private:
  std::thread thread_;
  absl::Notification* stop_ = nullptr;
};

}  // namespace hsync::panelsim
