#include "reporter/state/db_session.h"

namespace hsync::reporter {

absl::StatusOr<MariaDbConnection*> DbSession::Get() {
  if (conn_ == nullptr) {
    auto conn = MariaDbConnection::Connect(options_);
    if (!conn.ok()) return conn.status();
    conn_ = *std::move(conn);
  }
  return conn_.get();
}

void DbSession::Check(const absl::Status& status) {
  // Anything but a plain SQL-level error may have left the connection broken
  // or mid-transaction: start afresh next time.
  if (!status.ok() && status.code() != absl::StatusCode::kAlreadyExists) Drop();
}

}  // namespace hsync::reporter
