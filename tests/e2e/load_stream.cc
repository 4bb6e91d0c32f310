#include "tests/e2e/load_stream.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "tests/e2e/hub_runner.h"

namespace hsync::e2e {

using hiddify_sync::v1::ReportAck;
using hiddify_sync::v1::RosterUpdate;
using hiddify_sync::v1::UsageReport;

LoadStream::LoadStream(LoadStreamOptions options)
    : options_(std::move(options)),
      channel_(MakeE2eChannel(options_.target)),
      stub_(hiddify_sync::v1::SyncHub::NewStub(channel_)),
      rng_(options_.seed) {
  stream_id_ = rng_() | 1;
}

LoadStream::~LoadStream() { Stop(); }

void LoadStream::Start() {
  report_thread_ = std::thread([this] { ReportLoop(); });
  if (options_.watch_roster) roster_thread_ = std::thread([this] { RosterLoop(); });
}

void LoadStream::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  {
    std::lock_guard<std::mutex> lock(roster_mu_);
    if (roster_context_ != nullptr) roster_context_->TryCancel();
  }
  if (report_thread_.joinable()) report_thread_.join();
  if (roster_thread_.joinable()) roster_thread_.join();
}

void LoadStream::ReportLoop() {
  if (stop_.WaitForNotificationWithTimeout(options_.phase)) return;
  std::uniform_int_distribution<uint64_t> bytes(1, options_.max_bytes);
  while (true) {
    const absl::Time started = absl::Now();
    UsageReport report;
    report.set_node_id(options_.node_id);
    report.set_stream_id(stream_id_);
    report.set_seq(++seq_);
    *report.mutable_collected_at() = ToProtoTimestamp(started);
    for (const std::string& uuid : options_.users) {
      auto* usage = report.add_usages();
      usage->set_uuid(uuid);
      usage->set_bytes(bytes(rng_));
      *usage->mutable_last_online() = ToProtoTimestamp(started);
    }
    // Resent until acknowledged, as the reporter's outbox does.
    while (true) {
      grpc::ClientContext context;
      context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      ReportAck ack;
      const absl::Time sent = absl::Now();
      const grpc::Status status = stub_->ReportUsage(&context, report, &ack);
      if (status.ok() && ack.acked_seq() >= report.seq()) {
        const double ms = absl::ToDoubleMilliseconds(absl::Now() - sent);
        std::vector<WatchedReport> watched;
        for (const auto& usage : report.usages()) {
          const uint64_t total = acked_[usage.uuid()] += usage.bytes();
          if (options_.watched.contains(usage.uuid())) {
            watched.push_back({usage.uuid(), started, total});
          }
        }
        std::lock_guard<std::mutex> lock(mu_);
        latencies_ms_.push_back(ms);
        watched_.insert(watched_.end(), watched.begin(), watched.end());
        ++reports_acked_;
        break;
      }
      ++failed_calls_;
      // Even when asked to stop, the report in flight is resent until
      // acknowledged (within reason), so that acked_ is what the hub holds.
      if (absl::Now() - started > absl::Minutes(2)) return;
      absl::SleepFor(absl::Milliseconds(500));
    }
    if (stop_.HasBeenNotified()) return;
    const absl::Duration wait = options_.interval - (absl::Now() - started);
    if (stop_.WaitForNotificationWithTimeout(wait)) return;
  }
}

std::map<std::string, absl::Time> LoadStream::cuts_seen() {
  std::lock_guard<std::mutex> lock(mu_);
  return cuts_seen_;
}

void LoadStream::RosterLoop() {
  while (!stop_.HasBeenNotified()) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
    {
      std::lock_guard<std::mutex> lock(roster_mu_);
      if (stop_.HasBeenNotified()) return;
      roster_context_ = &context;
    }
    hiddify_sync::v1::WatchRosterRequest request;
    request.set_node_id(options_.node_id);
    auto reader = stub_->WatchRoster(&context, request);
    RosterUpdate update;
    while (reader->Read(&update)) {
      ++roster_updates_;
      if (options_.cut_watched.empty()) continue;
      const absl::Time now = absl::Now();
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& user : update.upserts()) {
        if (!user.is_active() && options_.cut_watched.contains(user.uuid())) {
          cuts_seen_.emplace(user.uuid(), now);
        }
      }
    }
    (void)reader->Finish();
    {
      std::lock_guard<std::mutex> lock(roster_mu_);
      roster_context_ = nullptr;
    }
    stop_.WaitForNotificationWithTimeout(absl::Milliseconds(500));
  }
}

std::vector<double> LoadStream::TakeAckLatencies() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double> out;
  out.swap(latencies_ms_);
  return out;
}

std::vector<WatchedReport> LoadStream::TakeWatched() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WatchedReport> out;
  out.swap(watched_);
  return out;
}

}  // namespace hsync::e2e
