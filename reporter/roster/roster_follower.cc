#include "reporter/roster/roster_follower.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "reporter/util/backoff.h"
#include "reporter/outbox/hub_channel.h"

namespace hsync::reporter {

RosterFollower::RosterFollower(std::shared_ptr<grpc::Channel> channel, MariaDbOptions db,
                               RosterApplier* applier, CoreSyncer* core_syncer, StatusBoard* board,
                               RosterFollowerOptions options)
    : stub_(hiddify_sync::v1::SyncHub::NewStub(channel)),
      db_(std::move(db)),
      applier_(applier),
      core_syncer_(core_syncer),
      board_(board),
      options_(std::move(options)) {}

RosterFollower::~RosterFollower() { Stop(); }

void RosterFollower::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void RosterFollower::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void RosterFollower::Loop() {
  Backoff backoff(options_.retry_initial, options_.retry_max);
  if (auto conn = db_.Get(); conn.ok()) PublishHeld(**conn);
  while (true) {
    if (FollowOnce()) backoff.Reset();
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stop), backoff.Next());
    if (stopping_) return;
  }
}

bool RosterFollower::FollowOnce() {
  grpc::ClientContext context;
  AddHubAuth(context, options_.token);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    current_ = &context;
  }
  hiddify_sync::v1::WatchRosterRequest request;
  request.set_node_id(options_.node_id);
  std::unique_ptr<grpc::ClientReader<hiddify_sync::v1::RosterUpdate>> reader =
      stub_->WatchRoster(&context, request);
  bool applied_any = false;
  bool have_full = false;
  hiddify_sync::v1::RosterUpdate update;
  while (reader->Read(&update)) {
    if (!have_full && !update.full()) {
      LogWarning(absl::StrCat("roster: ignoring delta version ", update.version(),
                              " received before a full roster"));
      continue;
    }
    have_full = true;
    SetStreamOpen(true);
    absl::Status applied = ApplyUpdate(update);
    if (!applied.ok()) {
      const std::string message = absl::StrCat("roster: could not apply version ", update.version(),
                                               ": ", applied.message(),
                                               "; reconnecting for a full roster");
      LogError(message);
      board_->RecordError(message);
      context.TryCancel();
      break;
    }
    applied_any = true;
  }
  const grpc::Status status = reader->Finish();
  {
    absl::MutexLock lock(&mu_);
    current_ = nullptr;
    if (stopping_) {
      SetStreamOpen(false);
      return applied_any;
    }
  }
  SetStreamOpen(false);
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    const std::string message = absl::StrCat("roster stream: ", DescribeHubError(status));
    board_->RecordError(message);
    if (message != last_logged_error_) LogWarning(message);
    last_logged_error_ = message;
  } else if (status.ok()) {
    LogInfo("roster stream: the hub closed the stream; reopening");
  }
  if (applied_any) last_logged_error_.clear();
  return applied_any;
}

absl::Status RosterFollower::ApplyUpdate(const hiddify_sync::v1::RosterUpdate& update) {
  auto conn = db_.Get();
  if (!conn.ok()) return conn.status();
  const absl::Time started = absl::Now();
  auto result = applier_->Apply(**conn, update);
  if (!result.ok()) {
    db_.Check(result.status());
    return result.status();
  }
  const absl::Duration took = absl::Now() - started;
  TrackSkipped(update, result->skipped);
  if (result->guard_tripped) {
    LogWarning(absl::StrCat("roster guard: ", result->guard_reason));
  }
  if (result->unheld > 0) {
    LogInfo(absl::StrCat("roster guard: ", result->unheld,
                         " held removals dropped (the users are back on the parent, or nothing is"
                         " left to remove)"));
  }
  PublishHeld(**conn);
  if (result->changed()) {
    LogInfo(absl::StrCat("roster: version ", update.version(), update.full() ? " (full)" : "",
                         " applied in ", absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))),
                         ": created ", result->created, ", updated ", result->updated,
                         ", disabled ", result->disabled, ", removed ", result->removed));
    if (core_syncer_ != nullptr && result->core_changes > 0) core_syncer_->Wake();
  } else {
    LogDebug(absl::StrCat("roster: version ", update.version(), " changed nothing"));
  }
  board_->Update([&](auto& r) {
    r.set_roster_version_applied(update.version());
    *r.mutable_roster_applied_at() = ToProtoTimestamp(absl::Now());
    r.set_users_created(r.users_created() + result->created);
    r.set_users_updated(r.users_updated() + result->updated);
    r.set_users_disabled(r.users_disabled() + result->disabled);
    r.set_users_removed(r.users_removed() + result->removed);
    if (result->guard_tripped) {
      r.set_guard_trips(r.guard_trips() + 1);
      r.set_last_guard_reason(result->guard_reason);
    }
  });
  return absl::OkStatus();
}

void RosterFollower::TrackSkipped(const hiddify_sync::v1::RosterUpdate& update,
                                  const std::vector<SkippedUser>& skipped) {
  std::map<std::string, std::string> now;
  if (!update.full()) {
    now = skipped_;
    for (const auto& user : update.upserts()) now.erase(absl::AsciiStrToLower(user.uuid()));
    for (const auto& uuid : update.removed_uuids()) now.erase(absl::AsciiStrToLower(uuid));
  }
  for (const auto& s : skipped) now[s.uuid] = s.reason;
  bool new_skips = false;
  for (const auto& [uuid, reason] : now) {
    auto before = skipped_.find(uuid);
    if (before != skipped_.end() && before->second == reason) continue;
    new_skips = true;
    LogWarning(absl::StrCat("roster: skipping user ", uuid, " (version ", update.version(),
                            "): ", reason, "; the rest of the update was applied"));
  }
  for (const auto& [uuid, reason] : skipped_) {
    if (!now.contains(uuid)) LogInfo(absl::StrCat("roster: user ", uuid, " is no longer skipped"));
  }
  skipped_ = std::move(now);
  if (new_skips) {
    board_->RecordError(absl::StrCat("roster version ", update.version(), ": ", skipped_.size(),
                                     " users skipped, e.g. ", skipped_.begin()->first, ": ",
                                     skipped_.begin()->second));
  }
  board_->Update([&](auto& r) {
    r.clear_skipped_users();
    for (const auto& [uuid, reason] : skipped_) {
      if (static_cast<size_t>(r.skipped_users_size()) >= kMaxSkippedUsersShown) break;
      auto* s = r.add_skipped_users();
      s->set_uuid(uuid);
      s->set_reason(reason);
    }
  });
}

void RosterFollower::PublishHeld(MariaDbConnection& conn) {
  auto summary = applier_->held_removals().Summary(conn);
  if (!summary.ok()) {
    db_.Check(summary.status());
    return;
  }
  board_->Update([&](auto& r) { ShowHeldRemovals(*summary, r); });
}

void RosterFollower::SetStreamOpen(bool open) {
  board_->Update([open](auto& r) { r.set_roster_stream_open(open); });
}

}  // namespace hsync::reporter
