// Sends the outbox to the hub (ARCHITECTURE.md "Exactly once", step 2): rows
// go out in write order via SyncHub.ReportUsage with the node token; a row is
// deleted only after the hub acknowledged its seq (acked_seq >= seq), and in
// usage_mode = "reset" the acknowledged bytes are subtracted from the panel's
// counters in the same transaction as the delete. While the hub is away, rows
// stay and are retried with exponential backoff and jitter; nothing is dropped.
// A row the hub rejects as INVALID_ARGUMENT is kept (and blocks the ones after
// it, to keep the order), logged as an error and shown in status: it needs an
// operator. Runs its own thread and MariaDB connection.
//
// Before a row leaves, its seq is recorded as sent (StateStore::
// ClaimOldestForSend): from then on it is never merged. An ack of acked_seq
// deletes the rows up to min(acked_seq, highest seq sent). The hub being
// ahead of this reporter's state — an ack above the highest seq ever
// assigned in the stream, or ALREADY_EXISTS (that seq arrived before with
// another payload) — means the state was rolled back (VM snapshot, backup
// restore): the stream restarts (StateStore::RestartStream) with the
// unacknowledged rows, their bytes unchanged; logged once as a warning,
// counted in status (stream_restarts).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.grpc.pb.h"
#include "reporter/state/db_session.h"
#include "reporter/state/state_store.h"
#include "reporter/status/status_board.h"
#include "reporter/collect/usage_resetter.h"

namespace hsync::reporter {

struct OutboxSenderOptions {
  std::string token;                               // the node token; a secret
  absl::Duration call_timeout = absl::Seconds(30);
  absl::Duration retry_initial = absl::Milliseconds(500);
  absl::Duration retry_max = absl::Seconds(30);
  absl::Duration rejected_retry = absl::Minutes(1);  // after INVALID_ARGUMENT
  absl::Duration idle_poll = absl::Seconds(5);       // re-check without a Wake()
};

class OutboxSender {
 public:
  // `resetter` is null in watermark mode. Pointers must outlive the sender.
  OutboxSender(std::shared_ptr<grpc::Channel> channel, MariaDbOptions db, StateStore* store,
               UsageResetter* resetter, StatusBoard* board, OutboxSenderOptions options);
  ~OutboxSender();  // Stop()s

  void Start();
  // Cancels the call in flight (it is resent at the next start), finishes an
  // ack transaction in flight, then returns.
  void Stop();
  // New rows were written: send now.
  void Wake();

  // Sends rows until the outbox is empty or a call fails (caller's thread).
  // Returns the error that stopped it, OK when the outbox is empty.
  absl::Status DrainOnce();

 private:
  void Loop();
  // Sends one claimed row and processes the answer.
  absl::Status SendRow(MariaDbConnection& conn, const OutboxRow& row);
  // In one transaction: deletes what the ack covers (subtracting in reset
  // mode) and restarts the stream when the hub is ahead of it (true).
  absl::StatusOr<bool> ProcessAck(MariaDbConnection& conn, const OutboxRow& row, uint64_t acked_seq);
  // In one transaction: restarts the stream of `row` (ALREADY_EXISTS).
  absl::Status RestartAfterRefusal(MariaDbConnection& conn, const OutboxRow& row,
                                   const std::string& hub_message);
  void Restarted(const StreamRestart& restart, const std::string& why);
  void PublishOutboxStats(MariaDbConnection& conn);
  void ReportError(const std::string& message);

  std::unique_ptr<hiddify_sync::v1::SyncHub::Stub> stub_;
  DbSession db_;
  StateStore* store_;
  UsageResetter* resetter_;
  StatusBoard* board_;
  OutboxSenderOptions options_;

  absl::Mutex mu_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* current_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;

  bool last_rejected_ = false;  // the last failure was INVALID_ARGUMENT
  bool hub_ahead_logged_ = false;  // "hub ahead, resending" said for this stream
  std::string last_logged_error_;
  absl::Time last_logged_at_ = absl::InfinitePast();
};

}  // namespace hsync::reporter
