#include "hub/journal/journal_background_task.h"

#include <pthread.h>

#include <utility>

namespace hsync::hub {

std::unique_ptr<JournalBackgroundTask> JournalBackgroundTask::Start(std::string thread_name,
                                                                    std::function<void()> job) {
  std::unique_ptr<JournalBackgroundTask> task(new JournalBackgroundTask(std::move(job)));
  task->thread_ = std::thread([t = task.get(), name = std::move(thread_name)] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    t->Loop();
  });
  return task;
}

JournalBackgroundTask::~JournalBackgroundTask() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void JournalBackgroundTask::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (wanted_) return;
    wanted_ = true;
  }
  cv_.notify_one();
}

void JournalBackgroundTask::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return wanted_ || stopping_; });
    if (stopping_) return;
    wanted_ = false;
    lock.unlock();
    job_();
    lock.lock();
  }
}

}  // namespace hsync::hub
