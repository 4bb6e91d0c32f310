// Keeps one SyncHub.WatchRoster stream open and applies every RosterUpdate to
// the child's `user` table (RosterApplier, one transaction each), then asks
// the CoreSyncer to make the proxy cores follow the users it recorded. A broken stream, or
// an update that could not be applied, ends the stream; it is reopened after a
// backoff with jitter. Runs its own thread and MariaDB connection.
//
// Where it stands goes with every (re)opened stream (WatchRosterRequest
// fields 2-6): the hub run and version last applied completely (kept in the
// state schema, RosterPositionStore), so a hub that still has the deltas
// since sends those instead of a full roster; a delta that does not follow
// that version ends the stream for a full roster. Full rosters come in chunks
// (FullRosterAssembly): each chunk is applied as upserts only, in
// transactions of at most kChunkApplyBatch users (the child panel's own usage
// task is never held up by a transaction over all users); users absent on
// the parent are removed once the last chunk arrived, as one removal that the
// mass-removal guard judges on the whole roster. A stream broken mid-roster
// is reopened asking to resume at the next chunk (the hub starts the full
// roster over when it no longer has that version).
//
// It also keeps the set of roster users currently skipped (not written: the
// child's table cannot hold them or its database refused them) for status,
// logging each user once when it becomes skipped or its reason changes, and
// once when it is written again. A full roster replaces the set; a delta
// updates the users it carries. It publishes the guard's held removals after
// every update and when it starts.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "reporter/panel/core_syncer.h"
#include "reporter/state/db_session.h"
#include "reporter/roster/full_roster_assembly.h"
#include "reporter/roster/roster_applier.h"
#include "reporter/roster/roster_position.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {

struct RosterFollowerOptions {
  std::string node_id;
  std::string token;  // a secret
  std::string panel_database = "hiddifypanel";
  // Where the roster position is kept; null = in memory only (lost at restart).
  const StateStore* state = nullptr;
  absl::Duration retry_initial = absl::Milliseconds(500);
  absl::Duration retry_max = absl::Seconds(30);
};

class RosterFollower {
 public:
  // Pointers must outlive the follower; `core_syncer` may be null.
  RosterFollower(std::shared_ptr<grpc::Channel> channel, MariaDbOptions db,
                 RosterApplier* applier, CoreSyncer* core_syncer, StatusBoard* board,
                 RosterFollowerOptions options);
  ~RosterFollower();  // Stop()s

  void Start();
  // Cancels the stream; an update being applied finishes its transaction first.
  void Stop();

 private:
  void Loop();
  // Opens one stream and applies updates until it ends. True if at least one
  // update was applied (the caller then resets its backoff).
  bool FollowOnce();
  // One update in one transaction. `part` = a piece of a chunked full roster:
  // logged at debug level, the applied version is not advanced.
  absl::Status ApplyUpdate(const hiddify_sync::v1::RosterUpdate& update, bool part = false);
  // A whole update as the hub sent it: a delta, an unchunked full roster, or
  // one chunk (finishing the full roster after its last chunk).
  absl::Status ApplyReceived(const hiddify_sync::v1::RosterUpdate& update);
  absl::Status ApplyChunk(const hiddify_sync::v1::RosterUpdate& chunk);
  // After the last chunk: removes (behind the guard) local users no chunk carried.
  absl::Status FinishFullRoster();
  // Records `position` as held (memory and state schema).
  void SetPosition(const RosterPosition& position);
  void SetStreamOpen(bool open);
  // Folds the skips of one applied update into skipped_ (logging changes).
  void TrackSkipped(const hiddify_sync::v1::RosterUpdate& update,
                    const std::vector<SkippedUser>& skipped);
  void PublishHeld(MariaDbConnection& conn);

  std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> stub_;
  DbSession db_;
  RosterApplier* applier_;
  CoreSyncer* core_syncer_;
  StatusBoard* board_;
  RosterFollowerOptions options_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
  std::string last_logged_error_;
  std::map<std::string, std::string> skipped_;  // uuid -> reason (follower thread only)
  // Follower thread only:
  std::unique_ptr<RosterPositionStore> position_store_;  // null without options_.state
  RosterPosition position_;
  FullRosterAssembly assembly_;
  absl::Time assembly_started_ = absl::InfinitePast();
  RosterApplyResult assembly_totals_;
};

// Users of a chunk applied per transaction.
inline constexpr int kChunkApplyBatch = 500;

// At most this many skipped users are listed in the status reply.
inline constexpr size_t kMaxSkippedUsersShown = 1000;

}  // namespace hsync::reporter
