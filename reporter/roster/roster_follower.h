// Keeps one SyncHub.WatchRoster stream open and applies every RosterUpdate to
// the child's `user` table (RosterApplier, one transaction each), then asks
// the CoreSyncer to make the proxy cores follow the users it recorded. A broken stream, or
// an update that could not be applied, ends the stream; it is reopened after a
// backoff with jitter and starts again with a full roster, so nothing is
// skipped. Runs its own thread and MariaDB connection.
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
#include "reporter/roster/roster_applier.h"
#include "reporter/status/status_board.h"

namespace hsync::reporter {

struct RosterFollowerOptions {
  std::string node_id;
  std::string token;  // a secret
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
  absl::Status ApplyUpdate(const hiddify_sync::v1::RosterUpdate& update);
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
};

// At most this many skipped users are listed in the status reply.
inline constexpr size_t kMaxSkippedUsersShown = 1000;

}  // namespace hsync::reporter
