// Journal: a reporter whose state was rolled back (VM snapshot, backup
// restore) reuses seqs the hub acknowledged, for new traffic. The journal
// keeps a content hash per accepted seq and refuses such a report with
// AlreadyExists instead of dropping its bytes as a duplicate; honest resends
// stay plain duplicates. Also: migration of a journal of schema version 1.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "hub/journal/journal.h"
#include "hub/journal/journal_schema.h"
#include "hub/journal/journal_sqlite.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/support/child_process.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::UsageReport;
using testing::Delta;
using testing::MakeReport;
using testing::TestUuid;

class JournalRollbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hsync::testing::MakeTempDir("journal-rollback");
    path_ = dir_ + "/journal.sqlite";
    Reopen();
  }

  void Reopen(JournalOptions options = {}) {
    journal_.reset();
    auto journal = Journal::Open(path_, options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
  }

  AcceptResult MustAccept(const UsageReport& report) {
    auto result = journal_->Accept(report);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : AcceptResult{};
  }

  uint64_t Pending(const std::string& uuid) {
    auto pending = journal_->PendingUsers();
    EXPECT_TRUE(pending.ok()) << pending.status();
    if (!pending.ok()) return 0;
    for (const PendingUser& u : *pending) {
      if (u.uuid == uuid) return u.bytes;
    }
    return 0;
  }

  JournalStats MustStats() {
    auto stats = journal_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : JournalStats{};
  }

  StreamState OnlyStream() {
    auto streams = journal_->Streams();
    EXPECT_TRUE(streams.ok()) << streams.status();
    if (!streams.ok() || streams->size() != 1) {
      ADD_FAILURE() << "expected one stream";
      return {};
    }
    return (*streams)[0];
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Journal> journal_;
};

const absl::Time kCollected = absl::FromUnixSeconds(1'790'000'000);

// A report whose content is fixed by its arguments (collected_at included).
UsageReport Fixed(uint64_t stream, uint64_t seq, uint64_t bytes) {
  UsageReport report = MakeReport("n", stream, seq, {{TestUuid(1), bytes}, {TestUuid(2), 7}});
  *report.mutable_collected_at() = ToProtoTimestamp(kCollected + absl::Seconds(seq));
  return report;
}

TEST_F(JournalRollbackTest, AnIdenticalResendIsAPlainDuplicate) {
  MustAccept(Fixed(5, 1, 100));
  MustAccept(Fixed(5, 2, 200));
  AcceptResult dup = MustAccept(Fixed(5, 2, 200));  // the same report, built again
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.acked_seq, 2u);
  EXPECT_EQ(Pending(TestUuid(1)), 300u);
  EXPECT_EQ(OnlyStream().duplicates, 1u);
  EXPECT_EQ(MustStats().rollback_refusals, 0u);
}

TEST_F(JournalRollbackTest, TheSameSeqWithOtherContentIsRefusedAndChangesNothing) {
  MustAccept(Fixed(5, 1, 100));
  MustAccept(Fixed(5, 2, 200));
  const JournalStats before = MustStats();

  // The restored reporter counted new traffic under seq 2 again.
  auto refused = journal_->Accept(Fixed(5, 2, 555));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(refused.status().message(),
            "stream 5 seq 2 was accepted before with a different payload: this reporter's state "
            "was rolled back (snapshot or restore); it must start a new stream");

  // Nothing journaled: no pending bytes, no report, not even a duplicate.
  EXPECT_EQ(Pending(TestUuid(1)), 300u);
  const JournalStats after = MustStats();
  EXPECT_EQ(after.pending_bytes, before.pending_bytes);
  EXPECT_EQ(after.reports, before.reports);
  EXPECT_EQ(after.audit_bytes, before.audit_bytes);
  EXPECT_EQ(after.rollback_refusals, 1u);
  const StreamState stream = OnlyStream();
  EXPECT_EQ(stream.last_seq, 2u);
  EXPECT_EQ(stream.reports, 2u);
  EXPECT_EQ(stream.duplicates, 0u);

  // Every refusal counts; the stream goes on for an honest resend.
  EXPECT_EQ(journal_->Accept(Fixed(5, 1, 1)).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(MustStats().rollback_refusals, 2u);
  EXPECT_TRUE(MustAccept(Fixed(5, 1, 100)).duplicate);
  EXPECT_FALSE(MustAccept(Fixed(5, 3, 1)).duplicate);
}

TEST_F(JournalRollbackTest, EveryPartOfTheContentCounts) {
  const UsageReport original = Fixed(8, 1, 100);
  MustAccept(original);
  std::map<std::string, UsageReport> changed;
  changed["bytes"] = original;
  changed["bytes"].mutable_usages(1)->set_bytes(8);
  changed["uuid"] = original;
  changed["uuid"].mutable_usages(1)->set_uuid(TestUuid(3));
  changed["order"] = original;
  changed["order"].mutable_usages()->SwapElements(0, 1);
  changed["last_online"] = original;
  *changed["last_online"].mutable_usages(0)->mutable_last_online() = ToProtoTimestamp(kCollected);
  changed["collected_at"] = original;
  changed["collected_at"].mutable_collected_at()->set_nanos(1);
  changed["one more user"] = original;
  changed["one more user"].add_usages()->set_uuid(TestUuid(4));
  for (const auto& [what, report] : changed) {
    EXPECT_EQ(journal_->Accept(report).status().code(), absl::StatusCode::kAlreadyExists) << what;
  }
  EXPECT_EQ(MustStats().rollback_refusals, changed.size());
  EXPECT_TRUE(MustAccept(original).duplicate);
}

TEST_F(JournalRollbackTest, AReopenedJournalStillRecognisesARollback) {
  MustAccept(Fixed(9, 1, 100));
  MustAccept(Fixed(9, 2, 200));
  Reopen();
  EXPECT_TRUE(MustAccept(Fixed(9, 2, 200)).duplicate);
  auto refused = journal_->Accept(Fixed(9, 2, 999));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists) << refused.status();
  EXPECT_EQ(MustStats().rollback_refusals, 1u);  // counted since this open
  EXPECT_EQ(Pending(TestUuid(1)), 300u);
}

TEST_F(JournalRollbackTest, ASeqWhoseHashWasPrunedIsAPlainDuplicate) {
  JournalOptions options;
  options.report_hashes_kept_per_stream = 2;
  Reopen(options);
  for (uint64_t seq = 1; seq <= 5; ++seq) MustAccept(Fixed(3, seq, 10));
  ASSERT_TRUE(journal_->PruneReports(absl::ZeroDuration()).ok());
  // Seqs 1-3 lost their hash (older than the age limit, not among the last 2):
  // nothing to compare with, so an ack as before (the reporter learns from an
  // ack above its own seq that it is behind).
  AcceptResult old = MustAccept(Fixed(3, 2, 999));
  EXPECT_TRUE(old.duplicate);
  EXPECT_EQ(old.acked_seq, 5u);
  // The last 2 keep theirs, whatever their age.
  EXPECT_EQ(journal_->Accept(Fixed(3, 4, 999)).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Pending(TestUuid(1)), 50u);
}

TEST_F(JournalRollbackTest, HashesOutliveAnAgePruneOfTheirAge) {
  for (uint64_t seq = 1; seq <= 3; ++seq) MustAccept(Fixed(4, seq, 10));
  ASSERT_TRUE(journal_->PruneReports(absl::Hours(1)).ok());  // nothing is an hour old
  EXPECT_EQ(journal_->Accept(Fixed(4, 1, 11)).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(JournalRollbackTest, ACopyInTheSameBatchWithOtherContentIsRefused) {
  // Two different reports for one seq arriving together: one is accepted,
  // the other refused (never both counted).
  std::vector<Delta> big;
  for (int i = 0; i < 100'000; ++i) big.push_back({TestUuid(i + 1000), 1});
  const UsageReport big_report = MakeReport("big", 1, 1, big);
  std::thread busy([&] { MustAccept(big_report); });
  absl::SleepFor(absl::Milliseconds(20));
  absl::StatusOr<AcceptResult> a, b;
  std::thread ta([&] { a = journal_->Accept(Fixed(6, 1, 100)); });
  std::thread tb([&] { b = journal_->Accept(Fixed(6, 1, 200)); });
  ta.join();
  tb.join();
  busy.join();
  EXPECT_NE(a.ok(), b.ok()) << a.status() << " / " << b.status();
  const absl::Status& refused = a.ok() ? b.status() : a.status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Pending(TestUuid(1)), a.ok() ? 100u : 200u);
}

// The tables of schema version 1, as that hub created them.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE streams(node_id TEXT NOT NULL, stream_id INTEGER NOT NULL, last_seq INTEGER NOT NULL,
  reports INTEGER NOT NULL, duplicates INTEGER NOT NULL, bytes INTEGER NOT NULL,
  last_report_at INTEGER NOT NULL, PRIMARY KEY(node_id, stream_id)) WITHOUT ROWID;
CREATE TABLE pending(uuid TEXT PRIMARY KEY, bytes INTEGER NOT NULL, last_online INTEGER,
  first_pending_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE reports(id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, stream_id INTEGER NOT NULL,
  seq INTEGER NOT NULL, received_at INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE TABLE intents(uuid TEXT PRIMARY KEY, value_read INTEGER NOT NULL,
  value_written INTEGER NOT NULL, bytes_applied INTEGER NOT NULL, created_at INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE orphans(uuid TEXT PRIMARY KEY, bytes INTEGER NOT NULL, first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES('schema_version', '1');
)sql";

// Writes a version-1 journal holding reports 1 and 2 of stream 7 of node "n".
void WriteVersion1Journal(const std::string& path, std::vector<UsageReport>* reports) {
  auto db = SqliteDb::Open(path, 1000);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE(db->Exec("PRAGMA journal_mode=WAL").ok());
  ASSERT_TRUE(db->Exec(kVersion1Schema).ok());
  const int64_t now = absl::ToUnixMicros(absl::Now());
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    reports->push_back(Fixed(7, seq, 100 * seq));
    auto insert = db->Prepare(
        "INSERT INTO reports(node_id, stream_id, seq, received_at, payload) "
        "VALUES('n', 7, ?1, ?2, ?3)");
    ASSERT_TRUE(insert.ok()) << insert.status();
    const std::string payload = reports->back().SerializeAsString();
    insert->BindInt64(1, static_cast<int64_t>(seq));
    insert->BindInt64(2, now);
    insert->BindBlob(3, payload);
    ASSERT_TRUE(insert->Run().ok());
  }
  ASSERT_TRUE(db->Exec(absl::StrCat("INSERT INTO streams VALUES('n', 7, 2, 2, 0, 314, ", now,
                                    ");"
                                    "INSERT INTO pending VALUES('",
                                    TestUuid(1), "', 300, NULL, ", now,
                                    ");"
                                    "INSERT INTO counters VALUES('reports_kept', 2);"))
                  .ok());
}

std::string SchemaVersion(const std::string& path) {
  auto db = SqliteDb::Open(path, 1000);
  if (!db.ok()) return db.status().ToString();
  auto version = db->QueryText("SELECT value FROM meta WHERE key = 'schema_version'");
  return version.ok() ? *version : version.status().ToString();
}

TEST_F(JournalRollbackTest, AVersion1JournalIsMigratedAndKeepsItsData) {
  journal_.reset();
  const std::string old_path = dir_ + "/v1.sqlite";
  std::vector<UsageReport> old_reports;
  WriteVersion1Journal(old_path, &old_reports);
  ASSERT_EQ(old_reports.size(), 2u);
  path_ = old_path;
  Reopen();
  EXPECT_EQ(SchemaVersion(old_path), std::to_string(kJournalSchemaVersion));

  const JournalStats stats = MustStats();
  EXPECT_EQ(stats.reports, 2u);
  EXPECT_EQ(stats.audit_bytes,
            old_reports[0].ByteSizeLong() + old_reports[1].ByteSizeLong());  // counted at migration
  EXPECT_EQ(stats.pending_bytes, 300u);
  // Version 1 kept no hashes: its seqs stay plain duplicates, whatever they carry.
  EXPECT_TRUE(MustAccept(Fixed(7, 2, 12345)).duplicate);
  // New reports get one.
  MustAccept(Fixed(7, 3, 300));
  EXPECT_EQ(journal_->Accept(Fixed(7, 3, 301)).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Pending(TestUuid(1)), 600u);
  EXPECT_EQ(MustStats().audit_bytes, stats.audit_bytes + Fixed(7, 3, 300).ByteSizeLong());

  // Opening again migrates nothing twice.
  Reopen();
  EXPECT_EQ(MustStats().audit_bytes, stats.audit_bytes + Fixed(7, 3, 300).ByteSizeLong());
}

TEST_F(JournalRollbackTest, AJournalOfANewerVersionIsRefused) {
  journal_.reset();
  {
    auto db = SqliteDb::Open(path_, 1000);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'").ok());
  }
  auto journal = Journal::Open(path_);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(journal.status().message().find("newer"), std::string::npos) << journal.status();
  EXPECT_EQ(SchemaVersion(path_), "99");  // left as it was
}

}  // namespace
}  // namespace hsync::hub
