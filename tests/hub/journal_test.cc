// Journal: acceptance, dedup, pending sums, intents, orphans, durability
// across reopen and across a SIGKILLed writer process.
#include "hub/journal/journal.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using testing::Delta;
using testing::MakeReport;
using testing::TestUuid;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hsync::testing::MakeTempDir("journal");
    path_ = dir_ + "/journal.sqlite";
    Reopen();
  }

  void Reopen() {
    journal_.reset();
    auto journal = Journal::Open(path_);
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
  }

  std::map<std::string, uint64_t> PendingMap() {
    auto pending = journal_->PendingUsers();
    EXPECT_TRUE(pending.ok()) << pending.status();
    std::map<std::string, uint64_t> out;
    if (pending.ok()) {
      for (const PendingUser& u : *pending) out[u.uuid] = u.bytes;
    }
    return out;
  }

  AcceptResult MustAccept(const hiddify_sync::v1::UsageReport& report) {
    auto result = journal_->Accept(report);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : AcceptResult{};
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Journal> journal_;
};

TEST_F(JournalTest, AcceptAcksSeqAndAddsPendingBytes) {
  const std::string a = TestUuid(1), b = TestUuid(2);
  AcceptResult r = MustAccept(MakeReport("node-1", 77, 1, {{a, 100}, {b, 5}}));
  EXPECT_EQ(r.acked_seq, 1u);
  EXPECT_FALSE(r.duplicate);
  r = MustAccept(MakeReport("node-1", 77, 2, {{a, 23}}));
  EXPECT_EQ(r.acked_seq, 2u);
  EXPECT_EQ(PendingMap(), (std::map<std::string, uint64_t>{{a, 123}, {b, 5}}));

  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pending_users, 2u);
  EXPECT_EQ(stats->pending_bytes, 128u);
  EXPECT_EQ(stats->reports, 2u);
  EXPECT_NE(stats->oldest_pending_at, absl::InfinitePast());
}

TEST_F(JournalTest, ZeroByteUsagesCreateNoPendingRow) {
  MustAccept(MakeReport("n", 1, 1, {{TestUuid(1), 0}, {TestUuid(2), 9}}));
  EXPECT_EQ(PendingMap(), (std::map<std::string, uint64_t>{{TestUuid(2), 9}}));
}

TEST_F(JournalTest, DuplicateSeqIsAckedAndChangesNothing) {
  const std::string a = TestUuid(1);
  const auto first = MakeReport("n", 5, 1, {{a, 10}});
  const auto second = MakeReport("n", 5, 2, {{a, 20}});
  MustAccept(first);
  MustAccept(second);
  // Resends, as a reporter makes them: the same report again.
  AcceptResult dup = MustAccept(second);
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.acked_seq, 2u);
  dup = MustAccept(first);
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.acked_seq, 2u);
  EXPECT_EQ(PendingMap()[a], 30u);

  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reports, 2u);
  auto streams = journal_->Streams();
  ASSERT_TRUE(streams.ok());
  ASSERT_EQ(streams->size(), 1u);
  EXPECT_EQ((*streams)[0].last_seq, 2u);
  EXPECT_EQ((*streams)[0].reports, 2u);
  EXPECT_EQ((*streams)[0].duplicates, 2u);
  EXPECT_EQ((*streams)[0].bytes, 30u);
  EXPECT_EQ(stats->rollback_refusals, 0u);
}

TEST_F(JournalTest, SameNodeDifferentStreamsAndNodesAreIndependent) {
  const std::string a = TestUuid(1);
  MustAccept(MakeReport("n1", 1, 5, {{a, 1}}));
  // A new stream of the same node (its state was lost) starts again at seq 1.
  AcceptResult r = MustAccept(MakeReport("n1", 2, 1, {{a, 2}}));
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.acked_seq, 1u);
  // Another node with the same stream id and seq is not a duplicate either.
  r = MustAccept(MakeReport("n2", 1, 5, {{a, 4}}));
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(PendingMap()[a], 7u);
}

TEST_F(JournalTest, GapInSeqIsAccepted) {
  MustAccept(MakeReport("n", 1, 1, {{TestUuid(1), 1}}));
  AcceptResult r = MustAccept(MakeReport("n", 1, 10, {{TestUuid(1), 1}}));
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.acked_seq, 10u);
  r = MustAccept(MakeReport("n", 1, 5, {{TestUuid(1), 1}}));
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.acked_seq, 10u);
  EXPECT_EQ(PendingMap()[TestUuid(1)], 2u);
}

TEST_F(JournalTest, DuplicatesWithinOneGroupCommitBatchAreAppliedOnce) {
  // Keep the writer busy with a big report, so that the concurrent copies of
  // one report queue up and are committed in the same batch.
  std::vector<Delta> big;
  for (int i = 0; i < 100'000; ++i) big.push_back({TestUuid(i + 1000), 1});
  const auto big_report = MakeReport("big", 1, 1, big);
  const auto report = MakeReport("n", 9, 3, {{TestUuid(1), 1000}});

  std::thread busy([&] { MustAccept(big_report); });
  absl::SleepFor(absl::Milliseconds(20));
  constexpr int kCopies = 16;
  std::atomic<int> fresh{0}, dups{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCopies; ++i) {
    threads.emplace_back([&] {
      AcceptResult r = MustAccept(report);
      EXPECT_EQ(r.acked_seq, 3u);
      (r.duplicate ? dups : fresh)++;
    });
  }
  for (auto& t : threads) t.join();
  busy.join();
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_EQ(dups.load(), kCopies - 1);
  EXPECT_EQ(PendingMap()[TestUuid(1)], 1000u);
}

TEST_F(JournalTest, CompletionAndNewBytesOfOneUserInOneBatchBothCount) {
  const std::string a = TestUuid(1);
  MustAccept(MakeReport("n", 1, 1, {{a, 100}}));
  ASSERT_TRUE(journal_->RecordIntent({a, 0, 100, 100, absl::Now()}).ok());
  std::vector<Delta> big;
  for (int i = 0; i < 50'000; ++i) big.push_back({TestUuid(i + 1000), 1});
  const auto big_report = MakeReport("big", 1, 1, big);
  std::thread busy([&] { MustAccept(big_report); });
  absl::SleepFor(absl::Milliseconds(20));
  std::vector<std::thread> threads;
  // Five nodes (one report each: seqs of one stream must arrive in order).
  for (int node = 2; node <= 6; ++node) {
    threads.emplace_back([&, node] { MustAccept(MakeReport(absl::StrCat("n", node), 1, 1, {{a, 7}})); });
  }
  threads.emplace_back([&] { EXPECT_TRUE(journal_->CompleteIntent(a, 100).ok()); });
  for (auto& t : threads) t.join();
  busy.join();
  EXPECT_EQ(PendingMap()[a], 35u);
}

// Bytes that arrived while a PATCH was under way are no older than its intent:
// after completion their age restarts at the intent, so the user is not due at once.
TEST_F(JournalTest, BytesLeftAfterCompletionAreDatedFromTheIntent) {
  const std::string a = TestUuid(1);
  MustAccept(MakeReport("n", 1, 1, {{a, 100}}));
  auto before = journal_->PendingUsers();
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  const absl::Time intent_at = (*before)[0].first_pending_at + absl::Hours(1);
  ASSERT_TRUE(journal_->RecordIntent({a, 0, 100, 100, intent_at}).ok());
  MustAccept(MakeReport("n", 1, 2, {{a, 7}}));
  ASSERT_TRUE(journal_->CompleteIntent(a, 100).ok());
  auto after = journal_->PendingUsers();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].bytes, 7u);
  EXPECT_EQ((*after)[0].first_pending_at, intent_at);
}

TEST_F(JournalTest, PendingSumsAcrossNodesKeepLatestLastOnlineAndOldestArrival) {
  const std::string a = TestUuid(1);
  const absl::Time t1 = absl::FromUnixSeconds(1'700'000'000);
  const absl::Time t2 = t1 + absl::Hours(1);
  MustAccept(MakeReport("n1", 1, 1, {{a, 100, t2}}));
  auto first = journal_->PendingUsers();
  ASSERT_TRUE(first.ok());
  const absl::Time arrival = (*first)[0].first_pending_at;
  absl::SleepFor(absl::Milliseconds(5));
  MustAccept(MakeReport("n2", 1, 1, {{a, 50, t1}}));
  MustAccept(MakeReport("n3", 1, 1, {{a, 7}}));  // last_online unknown
  auto pending = journal_->PendingUsers();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].bytes, 157u);
  EXPECT_EQ((*pending)[0].last_online, t2);
  EXPECT_EQ((*pending)[0].first_pending_at, arrival);
}

TEST_F(JournalTest, PendingUsersAreOldestFirst) {
  MustAccept(MakeReport("n", 1, 1, {{TestUuid(5), 1}}));
  absl::SleepFor(absl::Milliseconds(3));
  MustAccept(MakeReport("n", 1, 2, {{TestUuid(3), 1}, {TestUuid(5), 1}}));
  auto pending = journal_->PendingUsers();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].uuid, TestUuid(5));
  EXPECT_EQ((*pending)[1].uuid, TestUuid(3));
}

TEST_F(JournalTest, CompleteIntentSubtractsExactlyTheAppliedBytes) {
  const std::string a = TestUuid(1);
  MustAccept(MakeReport("n", 1, 1, {{a, 1000}}));
  ASSERT_TRUE(journal_->RecordIntent({a, 5000, 6000, 1000, absl::Now()}).ok());
  auto intents = journal_->OpenIntents();
  ASSERT_TRUE(intents.ok());
  ASSERT_EQ(intents->size(), 1u);
  EXPECT_EQ((*intents)[0].uuid, a);
  EXPECT_EQ((*intents)[0].value_read, 5000u);
  EXPECT_EQ((*intents)[0].value_written, 6000u);
  EXPECT_EQ((*intents)[0].bytes_applied, 1000u);

  // Bytes arriving between the intent and its completion stay pending.
  MustAccept(MakeReport("n", 1, 2, {{a, 33}}));
  ASSERT_TRUE(journal_->CompleteIntent(a, 1000).ok());
  EXPECT_EQ(PendingMap()[a], 33u);
  intents = journal_->OpenIntents();
  ASSERT_TRUE(intents.ok());
  EXPECT_TRUE(intents->empty());

  // A repeated completion finds no intent and subtracts nothing.
  absl::Status again = journal_->CompleteIntent(a, 1000);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_EQ(PendingMap()[a], 33u);

  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->bytes_applied_total, 1000u);
}

TEST_F(JournalTest, CompletingAllBytesRemovesThePendingUser) {
  const std::string a = TestUuid(1);
  MustAccept(MakeReport("n", 1, 1, {{a, 10}}));
  ASSERT_TRUE(journal_->RecordIntent({a, 0, 10, 10, absl::Now()}).ok());
  ASSERT_TRUE(journal_->CompleteIntent(a, 10).ok());
  EXPECT_TRUE(PendingMap().empty());
  // New bytes start a new pending period.
  MustAccept(MakeReport("n", 1, 2, {{a, 4}}));
  EXPECT_EQ(PendingMap()[a], 4u);
}

TEST_F(JournalTest, AbandonIntentKeepsPendingBytes) {
  const std::string a = TestUuid(1);
  MustAccept(MakeReport("n", 1, 1, {{a, 10}}));
  ASSERT_TRUE(journal_->RecordIntent({a, 0, 10, 10, absl::Now()}).ok());
  ASSERT_TRUE(journal_->AbandonIntent(a).ok());
  EXPECT_EQ(PendingMap()[a], 10u);
  auto intents = journal_->OpenIntents();
  ASSERT_TRUE(intents.ok());
  EXPECT_TRUE(intents->empty());
}

TEST_F(JournalTest, IntentRulesAreEnforced) {
  const std::string a = TestUuid(1);
  MustAccept(MakeReport("n", 1, 1, {{a, 10}}));
  EXPECT_EQ(journal_->RecordIntent({a, 0, 11, 11, absl::Now()}).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(journal_->RecordIntent({a, 0, 10, 10, absl::Now()}).ok());
  EXPECT_EQ(journal_->RecordIntent({a, 0, 10, 10, absl::Now()}).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(journal_->CompleteIntent(a, 9).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(journal_->MarkOrphaned(a, 10).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PendingMap()[a], 10u);
}

TEST_F(JournalTest, MarkOrphanedMovesBytesToOrphanCounters) {
  const std::string a = TestUuid(1), b = TestUuid(2);
  MustAccept(MakeReport("n", 1, 1, {{a, 10}, {b, 20}}));
  ASSERT_TRUE(journal_->MarkOrphaned(a, 10).ok());
  MustAccept(MakeReport("n", 1, 2, {{a, 5}}));
  ASSERT_TRUE(journal_->MarkOrphaned(a, 5).ok());
  EXPECT_EQ(PendingMap(), (std::map<std::string, uint64_t>{{b, 20}}));
  EXPECT_EQ(journal_->MarkOrphaned(b, 21).code(), absl::StatusCode::kFailedPrecondition);
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->orphaned_bytes, 15u);
  EXPECT_EQ(stats->orphaned_users, 1u);
  EXPECT_EQ(stats->pending_bytes, 20u);
}

TEST_F(JournalTest, EverythingSurvivesReopen) {
  const std::string a = TestUuid(1), b = TestUuid(2);
  const auto report = MakeReport("n", 42, 7, {{a, 10}, {b, 20}});
  MustAccept(report);
  ASSERT_TRUE(journal_->RecordIntent({a, 1, 11, 10, absl::Now()}).ok());
  ASSERT_TRUE(journal_->MarkOrphaned(b, 20).ok());
  Reopen();
  EXPECT_EQ(PendingMap()[a], 10u);
  auto intents = journal_->OpenIntents();
  ASSERT_TRUE(intents.ok());
  ASSERT_EQ(intents->size(), 1u);
  EXPECT_EQ((*intents)[0].value_written, 11u);
  AcceptResult r = MustAccept(report);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.acked_seq, 7u);
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->orphaned_bytes, 20u);
  EXPECT_EQ(stats->reports, 1u);
}

TEST_F(JournalTest, PruneReportsDropsOldAuditRowsOnly) {
  std::vector<hiddify_sync::v1::UsageReport> sent;
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    sent.push_back(MakeReport("n", 1, seq, {{TestUuid(1), 1}}));
    MustAccept(sent.back());
  }
  ASSERT_TRUE(journal_->PruneReports(absl::Hours(1)).ok());
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reports, 5u);
  ASSERT_TRUE(journal_->PruneReports(absl::ZeroDuration()).ok());
  stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reports, 0u);
  EXPECT_EQ(stats->audit_bytes, 0u);
  EXPECT_EQ(stats->pending_bytes, 5u);  // pending totals are not audit data
  // Dedup does not depend on the audit rows.
  EXPECT_TRUE(MustAccept(sent.back()).duplicate);
}

TEST_F(JournalTest, ASecondOpenOfTheSameJournalIsRefused) {
  auto second = Journal::Open(path_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status();
  journal_.reset();
  EXPECT_TRUE(Journal::Open(path_).ok());  // released on close
}

TEST_F(JournalTest, OpenFailsClearlyOnAFileThatIsNotAJournal) {
  const std::string bad = dir_ + "/garbage.sqlite";
  FILE* f = std::fopen(bad.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("this is not an sqlite database, just text that is long enough......", f);
  std::fclose(f);
  auto journal = Journal::Open(bad);
  EXPECT_FALSE(journal.ok());
  EXPECT_NE(journal.status().message().find("journal"), std::string::npos) << journal.status();
}

// Report `seq` of stream `stream` in the crash test: deterministic, so the
// parent process can recompute what every accepted report added.
hiddify_sync::v1::UsageReport CrashReport(uint64_t stream, uint64_t seq) {
  std::vector<Delta> deltas;
  for (uint64_t u = 0; u < 200; ++u) {
    deltas.push_back({TestUuid((seq * 7 + stream * 13 + u) % 500), seq * 1000 + u});
  }
  auto report = MakeReport("crash-node", stream, seq, deltas);
  *report.mutable_collected_at() = ToProtoTimestamp(absl::FromUnixSeconds(1'700'000'000 + seq));
  return report;
}

TEST_F(JournalTest, AcknowledgedReportsSurviveSigkillOfTheWritingProcess) {
  journal_.reset();  // the child process is the only writer
  constexpr int kStreams = 4;
  int ack_pipe[2];
  ASSERT_EQ(pipe(ack_pipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ack_pipe[0]);
    auto journal = Journal::Open(path_);
    if (!journal.ok()) _exit(3);
    // One writer thread per stream, so that group commits of several reports
    // are in flight when the kill comes.
    std::mutex pipe_mu;
    std::vector<std::thread> writers;
    for (uint64_t stream = 1; stream <= kStreams; ++stream) {
      writers.emplace_back([&, stream] {
        for (uint64_t seq = 1;; ++seq) {
          auto r = (*journal)->Accept(CrashReport(stream, seq));
          if (!r.ok() || r->duplicate) _exit(4);
          std::lock_guard<std::mutex> lock(pipe_mu);
          const uint64_t msg[2] = {stream, seq};
          if (write(ack_pipe[1], msg, sizeof msg) != sizeof msg) _exit(5);
        }
      });
    }
    for (auto& w : writers) w.join();
    _exit(0);
  }
  close(ack_pipe[1]);
  std::map<uint64_t, uint64_t> acked;  // stream -> highest acknowledged seq
  for (int n = 0; n < 300; ++n) {
    uint64_t msg[2];
    ASSERT_EQ(read(ack_pipe[0], msg, sizeof msg), static_cast<ssize_t>(sizeof msg));
    acked[msg[0]] = std::max(acked[msg[0]], msg[1]);
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
  close(ack_pipe[0]);

  Reopen();
  auto streams = journal_->Streams();
  ASSERT_TRUE(streams.ok()) << streams.status();
  ASSERT_EQ(streams->size(), static_cast<size_t>(kStreams));
  // Every acknowledged seq is there (a few more may have committed without
  // their ack reaching us), and the pending totals are exactly the sum of the
  // reports the journal holds: nothing half-written, nothing lost.
  std::map<std::string, uint64_t> expected;
  uint64_t reports = 0;
  uint64_t audit_bytes = 0;
  for (const StreamState& st : *streams) {
    EXPECT_GE(st.last_seq, acked[st.stream_id]) << "stream " << st.stream_id;
    EXPECT_EQ(st.reports, st.last_seq);
    reports += st.reports;
    for (uint64_t seq = 1; seq <= st.last_seq; ++seq) {
      const auto report = CrashReport(st.stream_id, seq);
      audit_bytes += report.ByteSizeLong();
      for (const auto& u : report.usages()) expected[u.uuid()] += u.bytes();
    }
  }
  EXPECT_EQ(PendingMap(), expected);
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reports, reports);
  EXPECT_EQ(stats->audit_bytes, audit_bytes);
  // And the reopened journal keeps deduplicating.
  EXPECT_TRUE(MustAccept(CrashReport(1, acked[1])).duplicate);
}

}  // namespace
}  // namespace hsync::hub
