// One job on a thread of its own, run whenever someone asks (Poke) and never
// by the asker: journal upkeep that must not delay an ingest call, such as
// pruning the audit copy by size. Asks that arrive while the job runs are
// folded into one more run. Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace hsync::hub {

class JournalBackgroundTask {
 public:
  // Starts the thread (named `thread_name`, at most 15 characters, for top -H).
  static std::unique_ptr<JournalBackgroundTask> Start(std::string thread_name,
                                                      std::function<void()> job);
  // Waits for a run under way, then stops the thread; pending asks are dropped.
  ~JournalBackgroundTask();

  // Asks for a run soon; returns at once.
  void Poke();

 private:
  explicit JournalBackgroundTask(std::function<void()> job) : job_(std::move(job)) {}
  void Loop();

  std::function<void()> job_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hsync::hub
