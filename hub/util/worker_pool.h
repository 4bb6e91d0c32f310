// A fixed set of threads for the blocking parts of RPC handling (journal
// commits, status queries), so that gRPC's callback threads never block and
// concurrent reports can share one group commit. Tasks run in FIFO order.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace hsync::hub {

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads);
  ~WorkerPool();  // Stop()s
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; returns false (task not run) after Stop() began.
  bool Submit(std::function<void()> task);
  // Runs every queued task, then joins the threads.
  void Stop();
  size_t queued() const;

 private:
  void Run();

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace hsync::hub
