#include "reporter/roster/roster_removal.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hsync::reporter {
namespace {

constexpr size_t kBatch = 1000;

// One batch (or one user): every statement of the policy for these ids.
absl::Status RemoveIds(MariaDbConnection& conn, const StateStore& store,
                       const std::string& user_table, RemovePolicy policy, const std::string& ids) {
  if (policy == RemovePolicy::kDisable) {
    return conn.Execute(absl::StrCat("UPDATE ", user_table, " SET enable = 0 WHERE id IN (", ids,
                                     ")"))
        .status();
  }
  RETURN_IF_ERROR(
      conn.Execute(absl::StrCat("DELETE FROM ", user_table, " WHERE id IN (", ids, ")")).status());
  return conn
      .Execute(absl::StrCat("DELETE FROM ", store.Table("watermark"), " WHERE user_id IN (", ids,
                            ")"))
      .status();
}

}  // namespace

const char* RemovalVerb(RemovePolicy policy) {
  return policy == RemovePolicy::kDisable ? "disabled" : "deleted";
}

absl::StatusOr<RemovalOutcome> RemoveLocalUsers(MariaDbConnection& conn, const StateStore& store,
                                                const std::string& user_table, RemovePolicy policy,
                                                const std::vector<RemovalTarget>& targets,
                                                const std::function<absl::Status()>& lock_meta) {
  RemovalOutcome outcome;
  if (targets.empty()) return outcome;
  if (policy == RemovePolicy::kDelete) RETURN_IF_ERROR(lock_meta());
  for (size_t start = 0; start < targets.size(); start += kBatch) {
    const size_t end = std::min(targets.size(), start + kBatch);
    std::string ids;
    for (size_t i = start; i < end; ++i) absl::StrAppend(&ids, ids.empty() ? "" : ",", targets[i].id);
    absl::Status batch = InSavepoint(conn, "hsync_removal_batch", [&] {
      return RemoveIds(conn, store, user_table, policy, ids);
    });
    if (batch.ok()) {
      for (size_t i = start; i < end; ++i) outcome.removed.push_back(targets[i].uuid);
      continue;
    }
    if (!IsRowRefusal(batch)) return batch;
    // Someone's row is refused: find out whose, one user at a time.
    for (size_t i = start; i < end; ++i) {
      absl::Status one = InSavepoint(conn, "hsync_removal_row", [&] {
        return RemoveIds(conn, store, user_table, policy, absl::StrCat(targets[i].id));
      });
      if (one.ok()) {
        outcome.removed.push_back(targets[i].uuid);
      } else if (IsRowRefusal(one)) {
        outcome.refused.push_back(
            {targets[i].uuid, absl::StrCat("could not be ", RemovalVerb(policy), ": ",
                                           RefusalReason(one))});
      } else {
        return one;
      }
    }
  }
  return outcome;
}

}  // namespace hsync::reporter
