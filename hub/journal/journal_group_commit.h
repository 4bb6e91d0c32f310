// Group commit for the journal: every write is an operation that a caller
// hands over and then blocks on; one writer thread takes everything queued,
// runs it in ONE SQLite transaction (each operation under its own savepoint, so
// a failing operation rolls back only itself), commits once (one fsync), then
// wakes every caller with its own result. A caller whose Run() returned OK
// knows its changes are durable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hub/journal/journal_sqlite.h"

namespace hsync::hub {

class GroupCommitter {
 public:
  // Runs inside the batch transaction; `batch_time` is one clock reading per batch.
  using Operation = std::function<absl::Status(absl::Time batch_time)>;

  // Optional work at batch level, on the writer thread. before_commit runs
  // after the batch's operations, inside the transaction (e.g. flushing what
  // the operations accumulated); if it fails, the whole batch fails.
  // batch_ended runs after every batch, committed or not.
  struct BatchHooks {
    std::function<absl::Status(absl::Time batch_time)> before_commit;
    std::function<void()> batch_ended;
  };

  // `db` is used only by the writer thread from now on and must outlive this object.
  static absl::StatusOr<std::unique_ptr<GroupCommitter>> Start(SqliteDb* db,
                                                               BatchHooks hooks = {});
  // Finishes everything queued, then stops the writer thread.
  ~GroupCommitter();

  // Queues `op`, blocks until its batch committed (or failed), returns its
  // result. If the commit itself fails, every operation of the batch gets that
  // error and none of their changes is kept.
  absl::Status Run(const Operation& op);

  struct Counters {
    uint64_t batches = 0;
    uint64_t operations = 0;
  };
  Counters counters() const;

 private:
  struct Waiter {
    const Operation* op = nullptr;
    absl::Status status;
    bool done = false;
  };

  GroupCommitter(SqliteDb* db, BatchHooks hooks) : db_(db), hooks_(std::move(hooks)) {}
  absl::Status PrepareStatements();
  void WriterLoop();
  // Runs the batch in one transaction and fills each waiter's status.
  void CommitBatch(const std::vector<Waiter*>& batch);
  absl::Status RunUnderSavepoint(const Operation& op, absl::Time batch_time);

  SqliteDb* db_;
  BatchHooks hooks_;
  std::optional<SqliteStatement> begin_, commit_, rollback_, savepoint_, release_, rollback_to_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // writer waits for work
  std::condition_variable done_cv_;  // callers wait for their batch
  std::vector<Waiter*> queue_;
  bool stopping_ = false;
  Counters counters_;
  std::thread writer_;
};

}  // namespace hsync::hub
