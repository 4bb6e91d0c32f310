#include "reporter/outbox/outbox_sender.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "reporter/util/backoff.h"
#include "reporter/outbox/hub_channel.h"
#include "reporter/state/sql_values.h"

namespace hsync::reporter {
namespace {

// Status codes used internally to steer the retry delay.
absl::Status Rejected(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

}  // namespace

OutboxSender::OutboxSender(std::shared_ptr<grpc::Channel> channel, MariaDbOptions db,
                           StateStore* store, UsageResetter* resetter, StatusBoard* board,
                           OutboxSenderOptions options)
    : stub_(hiddify_sync::v1::SyncHub::NewStub(channel)),
      db_(std::move(db)),
      store_(store),
      resetter_(resetter),
      board_(board),
      options_(std::move(options)) {}

OutboxSender::~OutboxSender() { Stop(); }

void OutboxSender::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void OutboxSender::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    // A cancelled call is resent at the next start; the hub recognises a
    // report it already has.
    if (current_call_ != nullptr) current_call_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void OutboxSender::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void OutboxSender::Loop() {
  Backoff backoff(options_.retry_initial, options_.retry_max);
  absl::Duration wait = absl::ZeroDuration();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || woken_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
      if (stopping_) return;
      woken_ = false;
    }
    absl::Status status = DrainOnce();
    if (status.ok()) {
      backoff.Reset();
      wait = options_.idle_poll;
    } else if (status.code() == absl::StatusCode::kInvalidArgument) {
      wait = options_.rejected_retry;  // operator work; do not hammer the hub
    } else {
      wait = backoff.Next();
    }
    if (!status.ok()) {
      // A retry wait ignores Wake(): new rows queue behind the one failing.
      absl::MutexLock lock(&mu_);
      woken_ = false;
    }
  }
}

absl::Status OutboxSender::DrainOnce() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("stopping");
    }
    auto conn = db_.Get();
    if (!conn.ok()) {
      ReportError(absl::StrCat("outbox: ", conn.status().message()));
      return conn.status();
    }
    auto row = store_->ClaimOldestForSend(**conn);
    if (!row.ok()) {
      db_.Check(row.status());
      ReportError(absl::StrCat("outbox: ", row.status().message()));
      return row.status();
    }
    PublishOutboxStats(**conn);
    if (!row->has_value()) return absl::OkStatus();
    absl::Status sent = SendRow(**conn, **row);
    if (!sent.ok()) {
      if (sent.code() == absl::StatusCode::kCancelled) return sent;
      ReportError(std::string(sent.message()));
      PublishOutboxStats(**conn);
      return sent;
    }
  }
}

absl::Status OutboxSender::SendRow(MariaDbConnection& conn, const OutboxRow& row) {
  hiddify_sync::v1::UsageReport report;
  if (!report.ParseFromString(row.payload)) {
    return Rejected(absl::StrCat("outbox row stream ", row.stream_id, " seq ", row.seq,
                                 " does not parse as a UsageReport; it is kept for inspection"));
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  AddHubAuth(context, options_.token);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    current_call_ = &context;
  }
  hiddify_sync::v1::ReportAck ack;
  const grpc::Status call = stub_->ReportUsage(&context, report, &ack);
  {
    absl::MutexLock lock(&mu_);
    current_call_ = nullptr;
  }
  if (call.error_code() == grpc::StatusCode::CANCELLED) return absl::CancelledError("stopping");
  if (call.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    absl::Status restarted = RestartAfterRefusal(conn, row, call.error_message());
    if (!restarted.ok()) db_.Check(restarted);
    return restarted;
  }
  if (!call.ok()) {
    std::string message = absl::StrCat("sending report seq ", row.seq, ": ", DescribeHubError(call));
    if (call.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      last_rejected_ = true;
      return Rejected(absl::StrCat(message,
                                   "; the report is kept in the outbox (it and every later one "
                                   "wait until an operator resolves this)"));
    }
    return absl::UnavailableError(message);
  }
  if (ack.acked_seq() < row.seq) {
    return absl::UnavailableError(absl::StrCat("the hub acknowledged seq ", ack.acked_seq(),
                                               " after receiving seq ", row.seq,
                                               " of stream ", row.stream_id, "; will resend"));
  }
  absl::StatusOr<bool> restarted = ProcessAck(conn, row, ack.acked_seq());
  if (!restarted.ok()) {
    db_.Check(restarted.status());
    return absl::Status(restarted.status().code(),
                        absl::StrCat("recording the hub's ack: ", restarted.status().message()));
  }
  if (last_rejected_ || !last_logged_error_.empty()) {
    LogInfo(absl::StrCat("outbox: the hub accepts reports again (seq ", row.seq, ")"));
    last_rejected_ = false;
    last_logged_error_.clear();
  }
  board_->Update([&](auto& r) {
    // Not after a restart: the new stream has acknowledged nothing yet.
    if (!*restarted) {
      r.set_last_seq_acked(std::max<uint64_t>(r.last_seq_acked(), ack.acked_seq()));
    }
    *r.mutable_last_ack_at() = ToProtoTimestamp(absl::Now());
  });
  return absl::OkStatus();
}

absl::StatusOr<bool> OutboxSender::ProcessAck(MariaDbConnection& conn, const OutboxRow& row,
                                              uint64_t acked_seq) {
  Transaction tx(conn);
  RETURN_IF_ERROR(tx.status());
  // Only this thread moves highest_sent_seq and the stream, so a plain read
  // is current; a merge only touches rows above it.
  ASSIGN_OR_RETURN(SendProgress progress, store_->ReadSendProgress(conn));
  // Rows this state sent (and the hub holds as they are): up to the highest
  // seq sent. Anything above was never sent from this state.
  const uint64_t covered = row.stream_id == progress.stream_id
                               ? std::min(acked_seq, progress.highest_sent_seq)
                               : row.seq;  // a row of an older stream: just itself
  if (resetter_ != nullptr) {
    RETURN_IF_ERROR(store_->LockMeta(conn).status());
    ASSIGN_OR_RETURN(ResultSet rs,
                     conn.Query(absl::StrCat("SELECT HEX(payload) FROM ", store_->Table("outbox"),
                                             " WHERE stream_id = ", row.stream_id, " AND seq <= ",
                                             covered, " FOR UPDATE")));
    std::vector<hiddify_sync::v1::UsageReport> acked;
    for (const auto& r : rs.rows) {
      hiddify_sync::v1::UsageReport report;
      if (report.ParseFromString(absl::HexStringToBytes(CellStr(r[0])))) {
        acked.push_back(std::move(report));
      }
    }
    RETURN_IF_ERROR(resetter_->SubtractAcknowledged(conn, acked));
  }
  RETURN_IF_ERROR(store_->DeleteAcked(conn, row.stream_id, covered).status());
  std::optional<StreamRestart> restart;
  if (row.stream_id == progress.stream_id) {
    ASSIGN_OR_RETURN(StreamState meta, store_->LockMeta(conn));
    // The hub holds seqs this state never assigned: it is ahead of us. The
    // reports still in the outbox were written before the rollback point or
    // after it: each goes to the hub once more in this stream, and the hub
    // tells which it holds as they are (acknowledged, deleted here) and
    // which not (ALREADY_EXISTS: moved into a new stream). Once none is
    // left, a new stream starts, so no later report reuses a seq the hub
    // already holds. Restarting at once would count a report the lost
    // timeline had delivered twice.
    if (meta.stream_id == row.stream_id && acked_seq + 1 > meta.next_seq) {
      ASSIGN_OR_RETURN(const uint64_t rows_left, store_->OutboxRows(conn));
      if (rows_left == 0) {
        ASSIGN_OR_RETURN(restart, store_->RestartStream(conn));
      } else if (!hub_ahead_logged_) {
        hub_ahead_logged_ = true;
        LogWarning(absl::StrCat("outbox: the hub acknowledged seq ", acked_seq, " of stream ",
                                row.stream_id, ", above the highest seq this reporter assigned "
                                "in it (its state was rolled back?); resending the ", rows_left,
                                " reports left so the hub can tell which it already holds"));
      }
    }
  }
  RETURN_IF_ERROR(tx.Commit());
  if (restart.has_value()) {
    Restarted(*restart, absl::StrCat("the hub acknowledged seq ", acked_seq, " of stream ",
                                     row.stream_id, ", above the highest seq this reporter "
                                     "assigned in it"));
  }
  return restart.has_value();
}

absl::Status OutboxSender::RestartAfterRefusal(MariaDbConnection& conn, const OutboxRow& row,
                                               const std::string& hub_message) {
  Transaction tx(conn);
  RETURN_IF_ERROR(tx.status());
  ASSIGN_OR_RETURN(StreamState meta, store_->LockMeta(conn));
  if (meta.stream_id != row.stream_id) {
    // A leftover row of an older stream (only this thread restarts streams).
    return absl::FailedPreconditionError(absl::StrCat(
        "the hub refused seq ", row.seq, " of the old stream ", row.stream_id,
        " (ALREADY_EXISTS: ", hub_message, "); the report is kept in the outbox"));
  }
  ASSIGN_OR_RETURN(StreamRestart restart, store_->RestartStream(conn));
  RETURN_IF_ERROR(tx.Commit());
  Restarted(restart, absl::StrCat("the hub refused seq ", row.seq, " of stream ", row.stream_id,
                                  " (ALREADY_EXISTS: ", hub_message, ")"));
  return absl::OkStatus();
}

void OutboxSender::Restarted(const StreamRestart& restart, const std::string& why) {
  hub_ahead_logged_ = false;
  LogWarning(absl::StrCat(
      "outbox: the hub is ahead of this reporter's state (", why,
      "): the state was rolled back (VM snapshot or backup restore?). New stream ",
      restart.new_stream_id, " replaces stream ", restart.old_stream_id, "; ", restart.rows_moved,
      " unacknowledged reports moved into it with their bytes"));
  board_->Update([&](auto& r) {
    r.set_stream_restarts(r.stream_restarts() + 1);
    r.set_stream_id(restart.new_stream_id);
    r.set_last_seq_written(restart.rows_moved);
    r.set_last_seq_acked(0);
  });
}

void OutboxSender::PublishOutboxStats(MariaDbConnection& conn) {
  auto stats = store_->Stats(conn);
  if (!stats.ok()) return;
  board_->Update([&](auto& r) {
    r.set_outbox_reports(stats->reports);
    r.set_outbox_bytes(stats->bytes);
    if (stats->reports == 0) r.clear_outbox_oldest_at();
    else *r.mutable_outbox_oldest_at() = ToProtoTimestamp(stats->oldest_at);
  });
}

void OutboxSender::ReportError(const std::string& message) {
  board_->RecordError(message);
  // The same error is logged once a minute, not once per retry.
  const absl::Time now = absl::Now();
  if (message != last_logged_error_ || now - last_logged_at_ > absl::Minutes(1)) {
    LogError(message);
    last_logged_error_ = message;
    last_logged_at_ = now;
  }
}

}  // namespace hsync::reporter
