#include "reporter/roster/roster_follower.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "reporter/state/sql_values.h"
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
      options_(std::move(options)) {
  if (options_.state != nullptr) {
    position_store_ = std::make_unique<RosterPositionStore>(options_.state);
  }
}

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
  if (auto conn = db_.Get(); conn.ok()) {
    PublishHeld(**conn);
    if (position_store_ != nullptr) {
      auto loaded = position_store_->Load(**conn);
      if (loaded.ok()) {
        position_ = *loaded;
        if (position_.version != 0) {
          LogInfo(absl::StrCat("roster: holding version ", position_.version,
                               "; asking the hub for the changes since"));
        }
      } else {
        db_.Check(loaded.status());
        LogWarning(absl::StrCat("roster: reading the saved roster position failed (a full roster "
                                "will be asked for): ", loaded.status().message()));
      }
    }
  }
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
  request.set_accepts_chunks(true);
  if (assembly_.active()) {
    request.set_roster_epoch(assembly_.epoch());
    request.set_resume_full_version(assembly_.version());
    request.set_resume_next_chunk(assembly_.next_chunk());
  } else if (position_.version != 0 && position_.epoch != 0) {
    request.set_roster_epoch(position_.epoch);
    request.set_have_version(position_.version);
  }
  std::unique_ptr<grpc::ClientReader<hiddify_sync::v1::RosterUpdate>> reader =
      stub_->WatchRoster(&context, request);
  bool applied_any = false;
  bool first = true;
  hiddify_sync::v1::RosterUpdate update;
  while (reader->Read(&update)) {
    if (first) {
      first = false;
      if (!update.full() && request.have_version() != 0) {
        board_->Update([](auto& r) {
          r.set_roster_reconnects_with_deltas(r.roster_reconnects_with_deltas() + 1);
        });
        LogInfo(absl::StrCat("roster: the hub still had the changes since version ",
                             request.have_version(), "; no full roster needed"));
      } else if (update.full() && request.resume_full_version() != 0 &&
                 update.version() == request.resume_full_version() &&
                 update.chunk_index() == request.resume_next_chunk() && update.chunk_index() > 0) {
        board_->Update([](auto& r) { r.set_roster_full_resumes(r.roster_full_resumes() + 1); });
        LogInfo(absl::StrCat("roster: resuming full roster version ", update.version(),
                             " at chunk ", update.chunk_index(), " of ", update.chunk_count()));
      }
    }
    if (!update.full()) {
      if (position_.version == 0) {
        LogWarning(absl::StrCat("roster: ignoring delta version ", update.version(),
                                " received before a full roster"));
        continue;
      }
      if (update.version() != position_.version + 1 || update.roster_epoch() != position_.epoch) {
        LogWarning(absl::StrCat("roster: delta version ", update.version(), " does not follow ",
                                "the version held (", position_.version,
                                "); reconnecting for a full roster"));
        SetPosition(RosterPosition{});
        context.TryCancel();
        break;
      }
    }
    SetStreamOpen(true);
    absl::Status applied = ApplyReceived(update);
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

absl::Status RosterFollower::ApplyReceived(const hiddify_sync::v1::RosterUpdate& update) {
  if (update.full() && update.chunk_count() > 0) return ApplyChunk(update);
  if (update.full()) assembly_.Reset();  // an unchunked full roster replaces one in progress
  if (update.full() || update.upserts_size() > 0 || update.removed_uuids_size() > 0) {
    RETURN_IF_ERROR(ApplyUpdate(update));
  }  // else usage only (usage_updates): nothing the child writes, no transaction
  SetPosition(RosterPosition{update.roster_epoch(), update.version()});
  board_->Update([&](auto& r) {
    if (update.full()) {
      r.set_roster_full_applied(r.roster_full_applied() + 1);
    } else {
      r.set_roster_deltas_applied(r.roster_deltas_applied() + 1);
    }
  });
  return absl::OkStatus();
}

absl::Status RosterFollower::ApplyChunk(const hiddify_sync::v1::RosterUpdate& chunk) {
  switch (assembly_.Accept(chunk)) {
    case FullRosterAssembly::Step::kOutOfOrder:
      assembly_.Reset();
      return absl::DataLossError(absl::StrCat("chunk ", chunk.chunk_index(), " of ",
                                              chunk.chunk_count(), " of version ", chunk.version(),
                                              " does not continue the full roster in progress"));
    case FullRosterAssembly::Step::kBegin:
      // The table becomes a mix of versions: no version is held any more.
      SetPosition(RosterPosition{});
      assembly_started_ = absl::Now();
      assembly_totals_ = RosterApplyResult{};
      break;
    case FullRosterAssembly::Step::kContinue:
      break;
  }
  // Upserts only, in bounded transactions; absent users wait for the last chunk.
  for (int start = 0; start < chunk.upserts_size(); start += kChunkApplyBatch) {
    hiddify_sync::v1::RosterUpdate part;
    part.set_version(chunk.version());
    part.set_roster_epoch(chunk.roster_epoch());
    const int end = std::min(chunk.upserts_size(), start + kChunkApplyBatch);
    for (int i = start; i < end; ++i) *part.add_upserts() = chunk.upserts(i);
    RETURN_IF_ERROR(ApplyUpdate(part, /*part=*/true));
  }
  assembly_.Applied(chunk);
  board_->Update([&](auto& r) {
    r.set_roster_chunks_applied(r.roster_chunks_applied() + 1);
    r.set_roster_full_in_progress_version(assembly_.version());
    r.set_roster_full_chunks_done(assembly_.next_chunk());
    r.set_roster_full_chunk_count(assembly_.chunk_count());
  });
  if (!assembly_.complete()) return absl::OkStatus();
  return FinishFullRoster();
}

absl::Status RosterFollower::FinishFullRoster() {
  auto conn = db_.Get();
  if (!conn.ok()) return conn.status();
  // Who is here: read without locks (the removal locks the rows it takes).
  auto local = (*conn)->Query(absl::StrCat("SELECT uuid FROM `", options_.panel_database,
                                           "`.`user`"));
  if (!local.ok()) {
    db_.Check(local.status());
    return local.status();
  }
  hiddify_sync::v1::RosterUpdate removal;
  removal.set_version(assembly_.version());
  removal.set_roster_epoch(assembly_.epoch());
  for (const auto& row : local->rows) {
    std::string uuid = absl::AsciiStrToLower(CellStr(row[0]));
    if (!assembly_.present().contains(uuid)) removal.add_removed_uuids(std::move(uuid));
  }
  local->rows.clear();
  RETURN_IF_ERROR(ApplyUpdate(removal, /*part=*/true));
  const RosterApplyResult& t = assembly_totals_;
  LogInfo(absl::StrCat("roster: version ", assembly_.version(), " (full, ", assembly_.chunk_count(),
                       " chunks, ", assembly_.users(), " users) applied in ",
                       absl::FormatDuration(absl::Trunc(absl::Now() - assembly_started_,
                                                        absl::Milliseconds(1))),
                       ": created ", t.created, ", updated ", t.updated, ", disabled ", t.disabled,
                       ", removed ", t.removed));
  const uint64_t version = assembly_.version();
  SetPosition(RosterPosition{assembly_.epoch(), version});
  assembly_.Reset();
  board_->Update([&](auto& r) {
    r.set_roster_version_applied(version);
    *r.mutable_roster_applied_at() = ToProtoTimestamp(absl::Now());
    r.set_roster_full_applied(r.roster_full_applied() + 1);
    r.set_roster_full_in_progress_version(0);
    r.set_roster_full_chunks_done(0);
    r.set_roster_full_chunk_count(0);
  });
  return absl::OkStatus();
}

void RosterFollower::SetPosition(const RosterPosition& position) {
  position_ = position;
  board_->Update([&](auto& r) { r.set_roster_epoch(position.epoch); });
  if (position_store_ == nullptr) return;
  auto conn = db_.Get();
  absl::Status saved = conn.ok() ? position_store_->Save(**conn, position) : conn.status();
  if (!saved.ok()) {
    if (conn.ok()) db_.Check(saved);
    // Not fatal: the next stream may ask for a version the table no longer
    // matches only if a later save succeeds with the wrong value, which
    // cannot happen; a missing save means a full roster or a re-applied delta.
    LogWarning(absl::StrCat("roster: saving the roster position failed: ", saved.message()));
  }
}

absl::Status RosterFollower::ApplyUpdate(const hiddify_sync::v1::RosterUpdate& update, bool part) {
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
  if (part) {
    RosterApplyResult& t = assembly_totals_;
    t.created += result->created;
    t.updated += result->updated;
    t.disabled += result->disabled;
    t.removed += result->removed;
    LogDebug(absl::StrCat("roster: part of full version ", update.version(), " applied in ",
                          absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1)))));
    if (core_syncer_ != nullptr && result->core_changes > 0) core_syncer_->Wake();
  } else if (result->changed()) {
    LogInfo(absl::StrCat("roster: version ", update.version(), update.full() ? " (full)" : "",
                         " applied in ", absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))),
                         ": created ", result->created, ", updated ", result->updated,
                         ", disabled ", result->disabled, ", removed ", result->removed));
    if (core_syncer_ != nullptr && result->core_changes > 0) core_syncer_->Wake();
  } else {
    LogDebug(absl::StrCat("roster: version ", update.version(), " changed nothing"));
  }
  board_->Update([&](auto& r) {
    if (!part) {
      r.set_roster_version_applied(update.version());
      *r.mutable_roster_applied_at() = ToProtoTimestamp(absl::Now());
    }
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
