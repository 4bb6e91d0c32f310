#include "tests/panelsim/shutdown_signal.h"

#include "absl/synchronization/notification.h"

namespace hsync::panelsim {
namespace {

absl::Notification& StopNotification() {
  static absl::Notification* notification = new absl::Notification();
  return *notification;
}

}  // namespace

void TriggerShutdown() {
  if (!StopNotification().HasBeenNotified()) StopNotification().Notify();
}

bool ShuttingDown() { return StopNotification().HasBeenNotified(); }

bool SleepUnlessStopping(absl::Duration duration) {
  if (duration <= absl::ZeroDuration()) return !ShuttingDown();
  return !StopNotification().WaitForNotificationWithTimeout(duration);
}

}  // namespace hsync::panelsim
