// A lazily (re)connected MariaDB connection for one worker thread: Get()
// connects when needed; after an error that means the connection is gone,
// Drop() makes the next Get() reconnect. Not thread-safe.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mariadb.h"

namespace hsync::reporter {

class DbSession {
 public:
  explicit DbSession(MariaDbOptions options) : options_(std::move(options)) {}

  // The open connection, connecting first if there is none.
  absl::StatusOr<MariaDbConnection*> Get();
  // Forgets the connection (the next Get() reconnects).
  void Drop() { conn_.reset(); }
  // Drops the connection when `status` says it is unusable (Unavailable, or an
  // error that leaves the session in an unknown state).
  void Check(const absl::Status& status);

  const MariaDbOptions& options() const { return options_; }

 private:
  MariaDbOptions options_;
  std::unique_ptr<MariaDbConnection> conn_;
};

}  // namespace hsync::reporter
