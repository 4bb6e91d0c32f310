// Process-wide "stopping" flag that long waits in panelsim (held answers,
// timeouts, background loops) watch, so SIGTERM ends the process promptly.
#pragma once

#include "absl/time/time.h"

namespace hsync::panelsim {

// Marks the process as stopping and wakes every SleepUnlessStopping().
void TriggerShutdown();
bool ShuttingDown();
// Sleeps `duration`; returns false early if the process is stopping.
bool SleepUnlessStopping(absl::Duration duration);

}  // namespace hsync::panelsim
