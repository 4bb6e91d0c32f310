// Copies the journal's WAL back into the database file on its own thread and
// connection, so that the group-commit writer never waits for a checkpoint
// (and its fsync) inside a batch. The writer's WAL hook wakes it; if it ever
// falls far behind, the writer checkpoints inline (bounded WAL size).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "hub/journal/journal_sqlite.h"

namespace hsync::hub {

class JournalCheckpointer {
 public:
  // Opens its own connection to `path` and installs the WAL hook on `writer`
  // (which replaces SQLite's automatic checkpoints on that connection).
  // `writer` must outlive this object.
  static absl::StatusOr<std::unique_ptr<JournalCheckpointer>> Start(const std::string& path,
                                                                    SqliteDb* writer);
  ~JournalCheckpointer();  // stops the thread and removes the hook

 private:
  JournalCheckpointer(SqliteDb db, SqliteDb* writer) : db_(std::move(db)), writer_(writer) {}
  static int WalHook(void* self, sqlite3* db, const char* name, int pages);
  void Loop();

  SqliteDb db_;
  SqliteDb* writer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hsync::hub
