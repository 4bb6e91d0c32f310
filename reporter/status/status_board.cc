#include "reporter/status/status_board.h"

#include "common/proto_time.h"

namespace hsync::reporter {

StatusBoard::StatusBoard() {}

void StatusBoard::Update(
    const std::function<void(hiddify_sync::v1::ReporterStatusReply&)>& change) {
  absl::MutexLock lock(&mu_);
  change(reply_);
}

hiddify_sync::v1::ReporterStatusReply StatusBoard::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return reply_;
}

void StatusBoard::RecordError(const std::string& message, absl::Time at) {
  absl::MutexLock lock(&mu_);
  reply_.set_last_error(message);
  *reply_.mutable_last_error_at() = ToProtoTimestamp(at);
}

}  // namespace hsync::reporter
