// What the reporter is doing, shared by its workers and read by the status
// service: a ReporterStatusReply guarded by a mutex. Workers update their own
// fields; errors are recorded with their time. Thread-safe.
#pragma once

#include <functional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/reporter_status.pb.h"

namespace hsync::reporter {

class StatusBoard {
 public:
  StatusBoard();

  // Runs `change` on the shared reply under the lock.
  void Update(const std::function<void(hiddify_sync::v1::ReporterStatusReply&)>& change);
  // A copy of the current reply.
  hiddify_sync::v1::ReporterStatusReply Snapshot() const;
  // Sets last_error / last_error_at. `message` must hold no secret.
  void RecordError(const std::string& message, absl::Time at = absl::Now());

 private:
  mutable absl::Mutex mu_;
  hiddify_sync::v1::ReporterStatusReply reply_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::reporter
