#include "hub/roster_poller.h"

#include <malloc.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace hsync::hub {

RosterPoller::RosterPoller(std::unique_ptr<ParentClient> parent, RosterStore* store,
                           absl::Duration interval)
    : parent_(std::move(parent)), store_(store), interval_(interval) {}

RosterPoller::~RosterPoller() { Stop(); }

void RosterPoller::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void RosterPoller::PollSoon() {
  absl::MutexLock lock(&mu_);
  poll_requested_ = true;
}

void RosterPoller::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status RosterPoller::PollOnce() {
  const absl::Time started = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    ++state_.polls;
    state_.last_attempt_at = started;
  }
  absl::StatusOr<std::vector<hiddify_sync::v1::User>> users = parent_->ListUsers();
  absl::Status status = users.status();
  size_t count = 0;
  if (users.ok()) {
    count = users->size();
    absl::StatusOr<RosterChange> change = store_->ReplaceAll(*std::move(users), started);
    if (change.ok()) {
      if (change->changed) {
        LogInfo(absl::StrCat("roster: version ", change->version, ", ", count, " users (",
                             change->upserts, " new or changed, ", change->removals, " removed)"));
      }
    } else {
      status = absl::DataLossError(
          absl::StrCat("parent user list rejected: ", change.status().message()));
    }
    // A big list leaves freed heap behind; hand it back to the system.
    malloc_trim(0);
  }
  absl::MutexLock lock(&mu_);
  state_.last_ok = status.ok();
  if (status.ok()) {
    state_.last_success_at = started;
  } else {
    ++state_.failures;
    state_.last_error = absl::StrCat("list users: ", status.ToString());
    state_.last_error_at = absl::Now();
    LogWarning(absl::StrCat("roster: reading the parent's user list failed, keeping version ",
                            store_->version(), ": ", status.ToString()));
  }
  return status;
}

RosterPollerState RosterPoller::State() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void RosterPoller::Run() {
  while (true) {
    PollOnce().IgnoreError();  // recorded in State()
    absl::MutexLock lock(&mu_);
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || poll_requested_; };
    mu_.AwaitWithTimeout(absl::Condition(&wake), interval_);
    if (stopping_) return;
    poll_requested_ = false;
  }
}

}  // namespace hsync::hub
