#include "hub/parent/core_syncer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace hsync::hub {

CoreSyncer::CoreSyncer(std::unique_ptr<ParentClient> parent, absl::Duration backoff_initial,
                       absl::Duration backoff_max)
    : parent_(std::move(parent)), backoff_initial_(backoff_initial), backoff_max_(backoff_max) {}

CoreSyncer::~CoreSyncer() { Stop(); }

void CoreSyncer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void CoreSyncer::Enqueue(const std::string& uuid) {
  absl::MutexLock lock(&mu_);
  queue_.insert(uuid);
  stats_.queued = queue_.size();
}

void CoreSyncer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

CoreSyncStats CoreSyncer::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void CoreSyncer::Run() {
  absl::Duration delay = absl::ZeroDuration();  // after a failure: the backoff
  for (;;) {
    std::string uuid;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      if (delay > absl::ZeroDuration()) {
        auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
        if (mu_.AwaitWithTimeout(absl::Condition(&stop), delay)) return;
      }
      uuid = *queue_.begin();
    }
    absl::StatusOr<hiddify_sync::v1::User> answer = parent_->SyncUserCores(uuid);
    absl::MutexLock lock(&mu_);
    if (answer.ok() || answer.status().code() == absl::StatusCode::kNotFound ||
        answer.status().code() == absl::StatusCode::kInvalidArgument) {
      if (answer.ok()) {
        ++stats_.patches;
      } else {
        LogWarning(absl::StrCat("core sync: user ", uuid, " not synced, dropped: ",
                                answer.status().message()));
      }
      queue_.erase(uuid);
      delay = absl::ZeroDuration();
    } else {
      ++stats_.failures;
      stats_.last_error = std::string(answer.status().message());
      stats_.last_error_at = absl::Now();
      delay = delay == absl::ZeroDuration() ? backoff_initial_ : std::min(delay * 2, backoff_max_);
      LogWarning(absl::StrCat("core sync: PATCH {} of user ", uuid, " failed, retrying in ",
                              absl::FormatDuration(delay), ": ", answer.status().message()));
    }
    stats_.queued = queue_.size();
  }
}

}  // namespace hsync::hub
