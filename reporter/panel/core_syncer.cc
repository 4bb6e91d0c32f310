#include "reporter/panel/core_syncer.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "reporter/util/backoff.h"

namespace hsync::reporter {

CoreSyncer::CoreSyncer(MariaDbOptions db, const CoreSyncQueue* queue,
                       std::unique_ptr<CoreSyncClient> client, ApplyTrigger* trigger,
                       StatusBoard* board, CoreSyncerOptions options)
    : db_(std::move(db)),
      queue_(queue),
      client_(std::move(client)),
      trigger_(trigger),
      board_(board),
      options_(options) {}

CoreSyncer::~CoreSyncer() { Stop(); }

void CoreSyncer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void CoreSyncer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CoreSyncer::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

absl::Duration CoreSyncer::RetryDelay(uint32_t attempts) const {
  absl::Duration ceiling = options_.retry_initial;
  for (uint32_t i = 0; i < attempts && ceiling < options_.retry_max; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, options_.retry_max);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> half_to_one(0.5, 1.0);
  return ceiling * half_to_one(rng);
}

void CoreSyncer::Loop() {
  Backoff db_backoff(absl::Milliseconds(500), absl::Seconds(30));
  while (true) {
    absl::Time next = absl::Now() + options_.poll;
    auto conn = db_.Get();
    if (conn.ok()) {
      auto due = DrainOnce(**conn);
      if (due.ok()) {
        db_backoff.Reset();
        next = std::min(next, *due);
        PublishStats(**conn);
      } else {
        db_.Check(due.status());
        const std::string message = absl::StrCat("core sync: ", due.status().message());
        LogError(message);
        board_->RecordError(message);
        next = absl::Now() + db_backoff.Next();
      }
    } else {
      next = absl::Now() + db_backoff.Next();
    }
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || woken_; };
    while (!ready() && absl::Now() < next) {
      mu_.AwaitWithTimeout(absl::Condition(&ready), std::max(next - absl::Now(), absl::ZeroDuration()));
    }
    if (stopping_) return;
    woken_ = false;
  }
}

absl::StatusOr<absl::Time> CoreSyncer::DrainOnce(MariaDbConnection& conn) {
  bool apply_owed = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      woken_ = false;
    }
    absl::StatusOr<std::vector<CoreSyncRow>> rows = queue_->Due(conn, absl::Now(), 100);
    if (!rows.ok()) return rows.status();
    if (rows->empty()) break;
    for (const CoreSyncRow& row : *rows) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) break;
      }
      absl::Status called = row.action == CoreAction::kDelete ? client_->DeleteUser(row.uuid)
                                                               : client_->SyncUser(row.uuid);
      if (absl::IsNotFound(called)) {
        if (row.action == CoreAction::kDelete) {
          called = absl::OkStatus();  // already gone: nothing left in any core
        } else {
          absl::StatusOr<bool> exists = queue_->UserRowExists(conn, row.uuid);
          if (!exists.ok()) return exists.status();
          if (!*exists) called = absl::OkStatus();  // removed meanwhile: nothing to follow
        }
      }
      if (called.ok()) {
        absl::StatusOr<bool> done = queue_->Complete(conn, row);
        if (!done.ok()) return done.status();
        if (*done && row.needs_apply) apply_owed = true;
        board_->Update([](auto& r) { r.set_core_syncs_done(r.core_syncs_done() + 1); });
        continue;
      }
      const std::string message = std::string(called.message());
      if (message != last_logged_error_) {
        LogWarning(absl::StrCat("core sync: ", message, " (attempt ", row.attempts + 1,
                                "; retried with backoff)"));
        last_logged_error_ = message;
      }
      board_->Update([&](auto& r) {
        r.set_core_syncs_failed(r.core_syncs_failed() + 1);
        r.set_core_sync_last_error(message);
        *r.mutable_core_sync_last_error_at() = ToProtoTimestamp(absl::Now());
      });
      if (absl::Status s = queue_->Postpone(conn, row, absl::Now() + RetryDelay(row.attempts), message);
          !s.ok()) {
        return s;
      }
    }
  }
  if (apply_owed && trigger_ != nullptr) trigger_->Request();
  return queue_->NextDue(conn);
}

void CoreSyncer::PublishStats(MariaDbConnection& conn) {
  auto stats = queue_->Stats(conn);
  if (!stats.ok()) return;
  board_->Update([&](auto& r) {
    r.set_core_sync_pending(stats->pending);
    if (stats->pending == 0) r.clear_core_sync_oldest_at();
    else *r.mutable_core_sync_oldest_at() = ToProtoTimestamp(stats->oldest_at);
  });
}

}  // namespace hsync::reporter
