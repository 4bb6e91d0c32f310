#include "reporter/roster/roster_savepoint.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hsync::reporter {

bool IsRowRefusal(const absl::Status& status) {
  // MariaDbError maps data errors (too long, out of range, bad enum value,
  // SIGNAL in a trigger, foreign key) to Internal and duplicate keys to
  // AlreadyExists; session and lock errors have codes of their own.
  return status.code() == absl::StatusCode::kInternal ||
         status.code() == absl::StatusCode::kAlreadyExists;
}

std::string RefusalReason(const absl::Status& status) {
  absl::string_view message = status.message();
  // "<context>: <server message> (MariaDB error N)"; the context of a prepared
  // statement is fixed text, of a plain one the quoted SQL: drop it.
  constexpr absl::string_view kPrepared = "executing prepared statement: ";
  constexpr absl::string_view kPlain = "executing \"";
  if (absl::StartsWith(message, kPrepared)) {
    message.remove_prefix(kPrepared.size());
  } else if (absl::StartsWith(message, kPlain)) {
    // Only statements without user data (removals by id) are run this way.
    if (size_t end = message.find("\": "); end != absl::string_view::npos) {
      message.remove_prefix(end + 3);
    }
  }
  return absl::StrCat("the child's database refused it: ", message);
}

absl::Status InSavepoint(MariaDbConnection& conn, const char* name,
                         const std::function<absl::Status()>& write) {
  RETURN_IF_ERROR(conn.Execute(absl::StrCat("SAVEPOINT ", name)).status());
  absl::Status status = write();
  if (status.ok()) return conn.Execute(absl::StrCat("RELEASE SAVEPOINT ", name)).status();
  if (!IsRowRefusal(status)) return status;
  RETURN_IF_ERROR(conn.Execute(absl::StrCat("ROLLBACK TO SAVEPOINT ", name)).status());
  return status;
}

}  // namespace hsync::reporter
