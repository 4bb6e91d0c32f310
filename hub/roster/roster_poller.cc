#include "hub/roster/roster_poller.h"

#include <malloc.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace hsync::hub {
namespace {

// How often the poller thread checks whether coalesced usage changes are due.
constexpr absl::Duration kUsageFlushTick = absl::Seconds(1);

}  // namespace

RosterPoller::RosterPoller(std::unique_ptr<RosterSource> source, RosterStore* store,
                           ListPacing pacing)
    : source_(std::move(source)), store_(store), pacer_(pacing) {
  state_.effective_interval = pacer_.Interval();
}

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
  // Users go into the replacement as they are read; it keeps only the
  // changed ones, and publishes nothing unless the whole read succeeds.
  std::unique_ptr<RosterStore::Replacement> replacement = store_->BeginReplace(started);
  absl::StatusOr<std::optional<std::vector<SkippedPanelUser>>> read =
      source_->Read([&replacement](hiddify_sync::v1::User user) { replacement->Add(user); });
  const absl::Duration took = absl::Now() - started;
  absl::Status status = read.status();
  if (read.ok() && !read->has_value()) {
    // Nothing changed since the last read: the roster is as fresh as this read.
    replacement.reset();
    store_->MarkFresh(started);
    absl::MutexLock lock(&mu_);
    RecordReadTime(took);
    state_.last_ok = true;
    state_.last_success_at = started;
    return status;
  }
  std::vector<SkippedPanelUser> skipped;
  if (read.ok()) {
    skipped = std::move(**read);
    const size_t count = replacement->added();
    KeptUsers kept;
    for (const SkippedPanelUser& user : skipped) {
      if (user.uuid.empty()) {
        kept.all = true;
      } else {
        kept.uuids.insert(user.uuid);
      }
    }
    absl::StatusOr<RosterChange> change = replacement->Commit(kept);
    if (change.ok()) {
      LogSkippedChanges(skipped);
      if (change->changed) {
        LogInfo(absl::StrCat("roster: version ", change->version, ", ", count, " users (",
                             change->upserts, " new or changed, ", change->removals, " removed",
                             skipped.empty()
                                 ? std::string()
                                 : absl::StrCat(", ", skipped.size(), " unreadable kept"),
                             ")"));
      }
    } else {
      status = absl::DataLossError(
          absl::StrCat("parent user list rejected: ", change.status().message()));
    }
  }
  replacement.reset();
  // A big list leaves freed heap behind; hand it back to the system.
  malloc_trim(0);
  absl::MutexLock lock(&mu_);
  RecordReadTime(took);
  state_.last_ok = status.ok();
  if (status.ok()) {
    state_.last_success_at = started;
    state_.skipped_users = std::move(skipped);
  } else {
    ++state_.failures;
    state_.last_error = absl::StrCat("list users: ", status.ToString());
    state_.last_error_at = absl::Now();
    LogWarning(absl::StrCat("roster: reading the parent's user list failed, keeping version ",
                            store_->version(), ": ", status.ToString()));
  }
  return status;
}

void RosterPoller::LogSkippedChanges(const std::vector<SkippedPanelUser>& skipped) {
  std::map<std::string, std::string> causes;
  for (const SkippedPanelUser& user : skipped) {
    if (!causes.emplace(user.uuid, user.field).second) continue;  // several without a uuid
    auto before = skipped_causes_.find(user.uuid);
    if (before != skipped_causes_.end() && before->second == user.field) continue;
    if (user.uuid.empty()) {
      LogWarning(absl::StrCat("roster: an element of the parent's user list has no readable uuid; "
                              "it is left out and no user is removed while it is there: ",
                              user.reason));
    } else {
      LogWarning(absl::StrCat("roster: user ", user.uuid,
                              " is left out of the roster (children keep what they had): ",
                              user.reason));
    }
  }
  for (const auto& [uuid, cause] : skipped_causes_) {
    if (causes.contains(uuid)) continue;
    LogInfo(uuid.empty() ? std::string("roster: the parent's list has no unreadable element "
                                       "without a uuid any more")
                         : absl::StrCat("roster: user ", uuid,
                                        " is readable again (or gone from the parent)"));
  }
  skipped_causes_ = std::move(causes);
}

void RosterPoller::RecordReadTime(absl::Duration took) {
  const absl::Duration interval_before = pacer_.Interval();
  pacer_.Record(took);
  state_.last_list_duration = took;
  state_.effective_interval = pacer_.Interval();
  // Logged when the interval moves by a quarter or more, or is back at poll_interval.
  const absl::Duration now_interval = state_.effective_interval;
  const bool back = now_interval == pacer_.pacing().poll_interval && interval_before != now_interval;
  if (back || now_interval > interval_before * 1.25 || now_interval * 1.25 < interval_before) {
    LogInfo(absl::StrCat("roster: reading the parent's users took ", absl::FormatDuration(took),
                         "; reading them every ", absl::FormatDuration(now_interval),
                         " (poll_interval ", absl::FormatDuration(pacer_.pacing().poll_interval),
                         ", at most ", pacer_.pacing().max_share * 100,
                         "% of the parent's time on it)"));
  }
}

RosterPollerState RosterPoller::State() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void RosterPoller::Run() {
  while (true) {
    PollOnce().IgnoreError();  // recorded in State()
    absl::Time next_poll;
    {
      absl::MutexLock lock(&mu_);
      next_poll = absl::Now() + pacer_.Interval();
    }
    while (true) {
      store_->FlushDueUsage();  // coalesced usage changes, when due (cheap otherwise)
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || poll_requested_; };
      const absl::Duration wait = std::min(next_poll - absl::Now(), kUsageFlushTick);
      if (wait > absl::ZeroDuration()) mu_.AwaitWithTimeout(absl::Condition(&wake), wait);
      if (stopping_) return;
      if (poll_requested_ || absl::Now() >= next_poll) break;
    }
    absl::MutexLock lock(&mu_);
    poll_requested_ = false;
  }
}

}  // namespace hsync::hub
