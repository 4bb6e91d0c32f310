// Writing one user's row inside a larger transaction without letting a row the
// child's database refuses (a trigger, a narrower column, a constraint) fail
// the whole roster apply. A refusal is an error of the statement itself; an
// error that ends the session or the transaction (connection lost, deadlock,
// lock wait timeout, missing table, access denied) is not one, and must fail
// the whole apply.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "common/mariadb.h"

namespace hsync::reporter {

// A roster user that was not written, and why (no secret: never the row's keys).
struct SkippedUser {
  std::string uuid;
  std::string reason;
  bool operator==(const SkippedUser&) const = default;
};

// True when `status` is MariaDB refusing the statement's data (the transaction
// is still usable once the statement, or the savepoint, is rolled back).
bool IsRowRefusal(const absl::Status& status);

// The MariaDB part of a refusal, for a person: the server's message and
// number, without the statement context (which may quote the row's keys).
std::string RefusalReason(const absl::Status& status);

// Runs `write` between SAVEPOINT `name` and RELEASE SAVEPOINT. When `write`
// fails with a refusal, rolls back to the savepoint (undoing all `write` did)
// and returns that refusal; any other error is returned as it is and the
// caller must abandon the transaction.
absl::Status InSavepoint(MariaDbConnection& conn, const char* name,
                         const std::function<absl::Status()>& write);

}  // namespace hsync::reporter
