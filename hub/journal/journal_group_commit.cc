#include "hub/journal/journal_group_commit.h"

#include <pthread.h>

#include <utility>

#include "common/status_macros.h"

namespace hsync::hub {

absl::StatusOr<std::unique_ptr<GroupCommitter>> GroupCommitter::Start(SqliteDb* db,
                                                                     BatchHooks hooks) {
  std::unique_ptr<GroupCommitter> committer(new GroupCommitter(db, std::move(hooks)));
  RETURN_IF_ERROR(committer->PrepareStatements());
  committer->writer_ = std::thread([c = committer.get()] {
    pthread_setname_np(pthread_self(), "journal-writer");  // visible in top -H
    c->WriterLoop();
  });
  return committer;
}

absl::Status GroupCommitter::PrepareStatements() {
  ASSIGN_OR_RETURN(begin_, db_->Prepare("BEGIN IMMEDIATE"));
  ASSIGN_OR_RETURN(commit_, db_->Prepare("COMMIT"));
  ASSIGN_OR_RETURN(rollback_, db_->Prepare("ROLLBACK"));
  ASSIGN_OR_RETURN(savepoint_, db_->Prepare("SAVEPOINT op"));
  ASSIGN_OR_RETURN(release_, db_->Prepare("RELEASE op"));
  ASSIGN_OR_RETURN(rollback_to_, db_->Prepare("ROLLBACK TO op"));
  return absl::OkStatus();
}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  if (writer_.joinable()) writer_.join();
}

absl::Status GroupCommitter::Run(const Operation& op) {
  Waiter waiter;
  waiter.op = &op;
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::FailedPreconditionError("journal: closing, write refused");
  queue_.push_back(&waiter);
  if (queue_.size() == 1) work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return waiter.done; });
  return std::move(waiter.status);
}

GroupCommitter::Counters GroupCommitter::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

void GroupCommitter::WriterLoop() {
  std::vector<Waiter*> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      batch.swap(queue_);
    }
    CommitBatch(batch);
    if (hooks_.batch_ended) hooks_.batch_ended();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Waiter* w : batch) w->done = true;
      counters_.batches++;
      counters_.operations += batch.size();
    }
    done_cv_.notify_all();
    batch.clear();
  }
}

absl::Status GroupCommitter::RunUnderSavepoint(const Operation& op, absl::Time batch_time) {
  RETURN_IF_ERROR(savepoint_->Run());
  absl::Status status = op(batch_time);
  if (!status.ok()) {
    // Undo only this operation's partial changes; the others stay in the batch.
    absl::Status undo = rollback_to_->Run();
    if (!undo.ok()) return undo;
  }
  RETURN_IF_ERROR(release_->Run());
  return status;
}

void GroupCommitter::CommitBatch(const std::vector<Waiter*>& batch) {
  const absl::Time batch_time = absl::Now();
  absl::Status begin = begin_->Run();
  if (!begin.ok()) {
    for (Waiter* w : batch) w->status = begin;
    return;
  }
  bool any_ok = false;
  for (Waiter* w : batch) {
    w->status = RunUnderSavepoint(*w->op, batch_time);
    any_ok = any_ok || w->status.ok();
    if (!w->status.ok() && sqlite3_get_autocommit(db_->raw())) {
      // SQLite rolled the whole transaction back by itself (e.g. disk full):
      // nothing of this batch is kept.
      for (Waiter* other : batch) {
        if (other->status.ok()) other->status = w->status;
      }
      return;
    }
  }
  absl::Status commit = absl::OkStatus();
  if (any_ok && hooks_.before_commit) commit = hooks_.before_commit(batch_time);
  if (commit.ok()) commit = any_ok ? commit_->Run() : rollback_->Run();
  if (!commit.ok()) {
    if (!sqlite3_get_autocommit(db_->raw())) (void)rollback_->Run();
    for (Waiter* w : batch) {
      if (w->status.ok()) w->status = commit;
    }
  }
}

}  // namespace hsync::hub
