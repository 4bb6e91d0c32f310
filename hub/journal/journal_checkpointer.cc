#include "hub/journal/journal_checkpointer.h"

#include <pthread.h>

#include <chrono>

#include "common/status_macros.h"
#include "hub/journal/journal_schema.h"

namespace hsync::hub {
namespace {

// WAL pages (4 KiB) after a commit that wake the checkpointer, and the size at
// which the writer stops relying on it and checkpoints inline.
constexpr int kWakePages = 1000;
constexpr int kInlinePages = 64 * 1000;

}  // namespace

absl::StatusOr<std::unique_ptr<JournalCheckpointer>> JournalCheckpointer::Start(
    const std::string& path, SqliteDb* writer) {
  ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path, /*busy_timeout_ms=*/10'000));
  RETURN_IF_ERROR(ConfigureJournalConnection(db));
  std::unique_ptr<JournalCheckpointer> c(new JournalCheckpointer(std::move(db), writer));
  sqlite3_wal_hook(writer->raw(), &JournalCheckpointer::WalHook, c.get());
  c->thread_ = std::thread([p = c.get()] {
    pthread_setname_np(pthread_self(), "journal-ckpt");
    p->Loop();
  });
  return c;
}

JournalCheckpointer::~JournalCheckpointer() {
  sqlite3_wal_hook(writer_->raw(), nullptr, nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

int JournalCheckpointer::WalHook(void* self, sqlite3* db, const char* name, int pages) {
  auto* c = static_cast<JournalCheckpointer*>(self);
  if (pages >= kInlinePages) {
    // Backpressure: the background thread cannot keep up.
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (pages >= kWakePages) {
    {
      std::lock_guard<std::mutex> lock(c->mu_);
      c->wanted_ = true;
    }
    c->cv_.notify_one();
  }
  return SQLITE_OK;
}

void JournalCheckpointer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return wanted_ || stopping_; });
    if (stopping_) return;
    wanted_ = false;
    lock.unlock();
    // PASSIVE: copies what it can without blocking readers or the writer.
    sqlite3_wal_checkpoint_v2(db_.raw(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
  }
}

}  // namespace hsync::hub
