// Journal: the audit copy of raw reports is bounded by size as well as by
// age (JournalOptions::audit_max_bytes): over the ceiling the oldest reports
// go first, the newest stay, the running total matches the table, and the
// pending bytes are never touched.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/proto_time.h"
#include "hub/journal/journal.h"
#include "hub/journal/journal_sqlite.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::UsageReport;
using testing::Delta;
using testing::MakeReport;
using testing::TestUuid;

constexpr int kUsersPerReport = 20;
constexpr uint64_t kBytesPerUser = 1000;

// Report `seq`: kUsersPerReport users with kBytesPerUser each; all reports
// have the same payload size.
UsageReport AuditReport(uint64_t seq) {
  std::vector<Delta> deltas;
  for (int u = 0; u < kUsersPerReport; ++u) deltas.push_back({TestUuid(u), kBytesPerUser});
  UsageReport report = MakeReport("n", 1, seq, deltas);
  *report.mutable_collected_at() = ToProtoTimestamp(absl::FromUnixSeconds(1'790'000'000));
  return report;
}

const uint64_t kReportBytes = AuditReport(1).ByteSizeLong();

// What the reports table holds, read on a connection of its own.
struct AuditTable {
  uint64_t rows = 0;
  uint64_t bytes = 0;
  uint64_t min_seq = 0;
  uint64_t max_seq = 0;
};

AuditTable ReadAuditTable(const std::string& path) {
  AuditTable t;
  auto db = SqliteDb::Open(path, 10'000);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return t;
  auto s = db->Prepare(
      "SELECT count(*), coalesce(sum(length(payload)), 0), coalesce(min(seq), 0), "
      "coalesce(max(seq), 0) FROM reports");
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return t;
  auto row = s->Step();
  EXPECT_TRUE(row.ok() && *row);
  t.rows = static_cast<uint64_t>(s->ColumnInt64(0));
  t.bytes = static_cast<uint64_t>(s->ColumnInt64(1));
  t.min_seq = static_cast<uint64_t>(s->ColumnInt64(2));
  t.max_seq = static_cast<uint64_t>(s->ColumnInt64(3));
  return t;
}

class JournalAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hsync::testing::MakeTempDir("journal-audit");
    path_ = dir_ + "/journal.sqlite";
  }

  void Open(uint64_t audit_max_bytes) {
    journal_.reset();
    JournalOptions options;
    options.audit_max_bytes = audit_max_bytes;
    auto journal = Journal::Open(path_, options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
  }

  void AcceptSeqs(uint64_t from, uint64_t to) {
    for (uint64_t seq = from; seq <= to; ++seq) {
      auto r = journal_->Accept(AuditReport(seq));
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_FALSE(r->duplicate);
    }
  }

  JournalStats MustStats() {
    auto stats = journal_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : JournalStats{};
  }

  // The background prune runs on its own thread: wait for it (no timing is
  // asserted, the wait only bounds a hang).
  bool WaitUntilAuditAtMost(uint64_t bytes) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (MustStats().audit_bytes <= bytes) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Journal> journal_;
};

TEST_F(JournalAuditTest, OverTheCeilingTheOldestReportsGoAndTheNewestStay) {
  const uint64_t max = 10 * kReportBytes + kReportBytes / 2;
  Open(max);
  AcceptSeqs(1, 30);
  ASSERT_TRUE(WaitUntilAuditAtMost(max)) << MustStats().audit_bytes << " > " << max;

  const JournalStats stats = MustStats();
  const AuditTable table = ReadAuditTable(path_);
  EXPECT_EQ(stats.audit_max_bytes, max);
  EXPECT_EQ(stats.reports, table.rows);
  EXPECT_EQ(stats.audit_bytes, table.bytes);  // the running total is the table's
  EXPECT_LE(table.bytes, max);
  EXPECT_EQ(table.max_seq, 30u);                         // the newest stays
  EXPECT_GT(table.min_seq, 1u);                          // the oldest went
  EXPECT_EQ(table.rows, table.max_seq - table.min_seq + 1);  // and only the oldest
  EXPECT_GE(table.rows, 8u);  // pruned to just under the ceiling, not far below it
  // Pending usage is not audit data: every report's bytes are still there.
  EXPECT_EQ(stats.pending_bytes, 30u * kUsersPerReport * kBytesPerUser);
  EXPECT_EQ(stats.pending_users, static_cast<uint64_t>(kUsersPerReport));
}

TEST_F(JournalAuditTest, PruneReportsBringsTheAuditUnderTheCeilingBeforeReturning) {
  const uint64_t max = 5 * kReportBytes;
  Open(0);  // no ceiling while writing
  AcceptSeqs(1, 12);
  EXPECT_EQ(MustStats().audit_bytes, 12 * kReportBytes);
  Open(max);
  ASSERT_TRUE(journal_->PruneReports(absl::Hours(24)).ok());
  const JournalStats stats = MustStats();
  EXPECT_LE(stats.audit_bytes, max);
  EXPECT_GT(stats.audit_bytes, 0u);
  const AuditTable table = ReadAuditTable(path_);
  EXPECT_EQ(stats.audit_bytes, table.bytes);
  EXPECT_EQ(stats.reports, table.rows);
  EXPECT_EQ(table.max_seq, 12u);
  EXPECT_EQ(stats.pending_bytes, 12u * kUsersPerReport * kBytesPerUser);
}

TEST_F(JournalAuditTest, ALowerCeilingAtOpenPrunesByItself) {
  Open(0);
  AcceptSeqs(1, 12);
  Open(3 * kReportBytes);  // e.g. the operator lowered audit_max_bytes
  ASSERT_TRUE(WaitUntilAuditAtMost(3 * kReportBytes));
  const AuditTable table = ReadAuditTable(path_);
  EXPECT_EQ(table.max_seq, 12u);
  EXPECT_LE(table.rows, 3u);
  EXPECT_EQ(MustStats().pending_bytes, 12u * kUsersPerReport * kBytesPerUser);
}

TEST_F(JournalAuditTest, WithoutACeilingOnlyAgePrunes) {
  Open(0);
  AcceptSeqs(1, 20);
  ASSERT_TRUE(journal_->PruneReports(absl::Hours(1)).ok());
  JournalStats stats = MustStats();
  EXPECT_EQ(stats.audit_max_bytes, 0u);
  EXPECT_EQ(stats.reports, 20u);
  EXPECT_EQ(stats.audit_bytes, 20 * kReportBytes);
  ASSERT_TRUE(journal_->PruneReports(absl::ZeroDuration()).ok());
  stats = MustStats();
  EXPECT_EQ(stats.reports, 0u);
  EXPECT_EQ(stats.audit_bytes, 0u);
  EXPECT_EQ(ReadAuditTable(path_).rows, 0u);
}

TEST_F(JournalAuditTest, TheRunningTotalSurvivesReopen) {
  Open(0);
  AcceptSeqs(1, 4);
  Open(0);
  EXPECT_EQ(MustStats().audit_bytes, 4 * kReportBytes);
  EXPECT_EQ(MustStats().reports, 4u);
}

}  // namespace
}  // namespace hsync::hub
