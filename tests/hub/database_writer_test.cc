// The database writer (write = "database") in process: Applier +
// DatabaseParentWriter + a real journal against panelsim's real MariaDB.
// Batches add exactly and start packages; exact to the byte while the
// parent's own usage task adds concurrently; orphans; an open batch settled
// by its id both ways; a MariaDB restart loses nothing; no access and a wrong
// schema are clear errors; the roster read from the database equals the
// API's list for the same data.
#include "hub/apply/database_parent_writer.h"

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "common/units.h"
#include "hub/apply/applier.h"
#include "hub/parent/parent_database.h"
#include "hub/roster/database_roster_source.h"
#include "hub/roster/roster_source.h"
#include "tests/hub/journal_test_helpers.h"
#include "tests/hub/parent_client_test_panel.h"
#include "tests/support/child_process.h"
#include "tests/support/test_mariadb.h"

namespace hsync::hub {
namespace {

using testing::Delta;
using testing::MakeReport;
using testing::TestPanel;
using testing::TestUuid;

absl::Time Later() { return absl::Now() + absl::Hours(1); }

// A fresh root connection to the shared test server (survives its restarts).
std::unique_ptr<MariaDbConnection> Root(const std::string& database = "") {
  auto conn = MariaDbConnection::Connect(hsync::testing::SharedMariaDb().Options(database));
  EXPECT_TRUE(conn.ok()) << conn.status();
  return conn.ok() ? std::move(*conn) : nullptr;
}

class DatabaseWriterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { panel_ = TestPanel::Start().release(); }
  static void TearDownTestSuite() {
    delete panel_;
    panel_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(panel_, nullptr);
    dir_ = hsync::testing::MakeTempDir("dbwriter");
    auto journal = Journal::Open(dir_ + "/journal.sqlite");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    hub_database_ = hsync::testing::UniqueDatabaseName("hub");
    options_.cycle_interval = absl::Milliseconds(20);
    options_.max_apply_delay = absl::ZeroDuration();
    options_.backoff_initial = absl::Milliseconds(200);
    options_.backoff_max = absl::Seconds(1);
  }
  void TearDown() override { applier_.reset(); }

  ParentDatabaseOptions DbOptions(TestPanel& panel) const {
    ParentDatabaseOptions o;
    o.socket = hsync::testing::SharedMariaDb().socket_path();
    o.user = "root";
    o.database = panel.runner().options().database;
    o.hub_database = hub_database_;
    o.connect_timeout = absl::Seconds(2);
    o.read_timeout = absl::Seconds(10);
    return o;
  }

  Applier& MakeApplier(TestPanel& panel) {
    auto writer = std::make_unique<DatabaseParentWriter>(
        journal_.get(), std::make_unique<ParentDatabase>(DbOptions(panel)),
        [] { return PanelToday(); });
    writer_ = writer.get();
    ApplierHooks hooks;
    hooks.on_user_patched = [this](const hiddify_sync::v1::User& user) {
      std::lock_guard<std::mutex> lock(mu_);
      after_[user.uuid()] = user;
    };
    applier_ = std::make_unique<Applier>(journal_.get(), std::move(writer), hooks, options_);
    return *applier_;
  }

  static std::string NewUuid() {
    static uint64_t n = 0;
    return TestUuid(++n, 0xdb);
  }

  void Accept(const std::string& node, uint64_t seq, const std::vector<Delta>& deltas) {
    auto r = journal_->Accept(MakeReport(node, 1, seq, deltas));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  uint64_t Pending(const std::string& uuid) {
    auto pending = journal_->PendingUsers();
    EXPECT_TRUE(pending.ok());
    for (const PendingUser& p : *pending) {
      if (p.uuid == uuid) return p.bytes;
    }
    return 0;
  }

  // current_usage on the parent, read with a fresh connection.
  uint64_t Usage(TestPanel& panel, const std::string& uuid) {
    auto conn = Root(panel.runner().options().database);
    if (conn == nullptr) return 0;
    auto rs = conn->Query(
        absl::StrCat("SELECT current_usage FROM user WHERE uuid = ", conn->Quote(uuid)));
    EXPECT_TRUE(rs.ok()) << rs.status();
    uint64_t v = 0;
    if (rs.ok() && !rs->rows.empty()) {
      EXPECT_TRUE(absl::SimpleAtoi(rs->rows[0][0].value_or(""), &v));
    }
    return v;
  }

  int64_t AppliedBatchRows() {
    auto conn = Root();
    auto rs = conn->Query(absl::StrCat("SELECT COUNT(*) FROM `", hub_database_, "`.applied_batches"));
    EXPECT_TRUE(rs.ok()) << rs.status();
    int64_t n = -1;
    if (rs.ok()) {
      EXPECT_TRUE(absl::SimpleAtoi(rs->rows[0][0].value_or(""), &n));
    }
    return n;
  }

  static TestPanel* panel_;
  std::string dir_;
  std::string hub_database_;
  std::unique_ptr<Journal> journal_;
  ApplierOptions options_;
  DatabaseParentWriter* writer_ = nullptr;
  std::unique_ptr<Applier> applier_;
  std::mutex mu_;
  std::map<std::string, hiddify_sync::v1::User> after_;
};
TestPanel* DatabaseWriterTest::panel_ = nullptr;

TEST_F(DatabaseWriterTest, OneTransactionAddsEveryUsersBytesAndStartsItsPackage) {
  const std::string a = NewUuid(), b = NewUuid();
  panel_->CreateUser(a, 1000 * kBytesPerGiB, 12345);                 // package not started
  panel_->CreateUser(b, 1000 * kBytesPerGiB, 777, "2024-01-01");
  const absl::Time seen = absl::Now() - absl::Minutes(3);
  Accept("n1", 1, {{a, 1'000'000'007, seen}, {b, 5}});
  Accept("n2", 1, {{a, 3}, {b, 2'000'000'000}});
  Applier& applier = MakeApplier(*panel_);
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());

  EXPECT_EQ(Usage(*panel_, a), 12345u + 1'000'000'010u);
  EXPECT_EQ(Usage(*panel_, b), 777u + 2'000'000'005u);
  const testing::DbUserRow row = panel_->Row(a);
  EXPECT_EQ(row.start_date, FormatPanelDate(PanelToday()));  // the package starts, as the panel's task does
  EXPECT_EQ(row.last_online, FormatPanelDateTime(absl::ToCivilSecond(seen, PanelTimeZone())));
  EXPECT_EQ(panel_->Row(b).start_date, "2024-01-01");
  EXPECT_EQ(Pending(a), 0u);
  EXPECT_EQ(Pending(b), 0u);
  const DatabaseWriterStats stats = writer_->Stats();
  EXPECT_EQ(stats.batches_applied, 1u);
  EXPECT_EQ(stats.last_batch_users, 2u);
  EXPECT_EQ(AppliedBatchRows(), 1);  // the batch's id, in the hub's own schema
  auto journal_stats = journal_->Stats();
  ASSERT_TRUE(journal_stats.ok());
  EXPECT_EQ(journal_stats->bytes_applied_total, 1'000'000'010u + 2'000'000'005u);
  // The roster fold gets the rows as the transaction left them.
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_TRUE(after_.count(a));
  EXPECT_EQ(after_[a].current_usage_bytes(), 12345u + 1'000'000'010u);
  EXPECT_TRUE(after_[a].is_active());
}

TEST_F(DatabaseWriterTest, AnOlderChildLastOnlineNeverMovesTheParentsBack) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, 1000 * kBytesPerGiB, 0, "2024-01-01");
  auto conn = Root(panel_->runner().options().database);
  ASSERT_TRUE(conn->Execute(absl::StrCat("UPDATE user SET last_online = '2099-01-01 00:00:00' "
                                         "WHERE uuid = ", conn->Quote(a)))
                  .ok());
  Accept("n1", 1, {{a, 10, absl::Now()}});
  ASSERT_TRUE(MakeApplier(*panel_).RunOneCycle(Later()).ok());
  EXPECT_EQ(panel_->Row(a).last_online, "2099-01-01 00:00:00");
  EXPECT_EQ(Usage(*panel_, a), 10u);
}

TEST_F(DatabaseWriterTest, AUserThePanelDoesNotHaveIsOrphanedAndCountedOnce) {
  const std::string known = NewUuid(), unknown = NewUuid();
  panel_->CreateUser(known, 1000 * kBytesPerGiB, 0, "2024-01-01");
  Accept("n1", 1, {{known, 100}, {unknown, 4242}});
  Applier& applier = MakeApplier(*panel_);
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(Usage(*panel_, known), 100u);
  EXPECT_EQ(Pending(unknown), 0u);
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->orphaned_bytes, 4242u);
  EXPECT_EQ(stats->orphaned_users, 1u);
  EXPECT_EQ(stats->bytes_applied_total, 100u);
  // Nothing left to retry.
  ASSERT_TRUE(applier.RunOneCycle(Later() + absl::Hours(1)).ok());
  EXPECT_EQ(writer_->Stats().batches_applied, 1u);
}

TEST_F(DatabaseWriterTest, AnOpenBatchWhoseIdIsOnTheParentIsMarkedDoneNotAppliedAgain) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, 1000 * kBytesPerGiB, 50, "2024-01-01");
  Accept("n1", 1, {{a, 1000}});
  // What a crash between the parent's commit and the journal's mark leaves:
  // the batch open in the journal, its bytes and id on the parent.
  Applier& applier = MakeApplier(*panel_);  // creates the hub schema on first use
  ASSERT_TRUE(writer_->Ping().ok());
  auto batch = journal_->RecordBatch({{a, 1000}});
  ASSERT_TRUE(batch.ok()) << batch.status();
  auto conn = Root(panel_->runner().options().database);
  ASSERT_TRUE(conn->Execute(absl::StrCat("UPDATE user SET current_usage = current_usage + 1000 "
                                         "WHERE uuid = ", conn->Quote(a)))
                  .ok());
  ASSERT_TRUE(conn->Execute(absl::StrCat("INSERT INTO `", hub_database_,
                                         "`.applied_batches VALUES (", batch->id,
                                         ", NOW(), 1, '')"))
                  .ok());
  ASSERT_TRUE(applier.Start().ok());  // settles first
  applier.Stop();
  EXPECT_EQ(Usage(*panel_, a), 1050u);
  EXPECT_EQ(Pending(a), 0u);
  auto open = journal_->OpenBatches();
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->empty());
  EXPECT_EQ(writer_->Stats().in_doubt_resolved, 1u);
  EXPECT_EQ(writer_->Stats().batches_applied, 0u);
}

TEST_F(DatabaseWriterTest, AnOpenBatchWhoseIdIsNotOnTheParentIsAppliedOnce) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, 1000 * kBytesPerGiB, 50, "2024-01-01");
  Accept("n1", 1, {{a, 1000}});
  Applier& applier = MakeApplier(*panel_);
  auto batch = journal_->RecordBatch({{a, 1000}});  // the parent never committed it
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_EQ(Usage(*panel_, a), 1050u);
  EXPECT_EQ(Pending(a), 0u);
  EXPECT_EQ(writer_->Stats().in_doubt_resolved, 1u);
  EXPECT_EQ(writer_->Stats().batches_applied, 1u);
}

TEST_F(DatabaseWriterTest, MariaDbDownAndRestartedLosesNothing) {
  const std::string a = NewUuid();
  panel_->CreateUser(a, 1000 * kBytesPerGiB, 9, "2024-01-01");
  Accept("n1", 1, {{a, 111}});
  Applier& applier = MakeApplier(*panel_);
  ASSERT_TRUE(writer_->Ping().ok());
  ASSERT_TRUE(hsync::testing::SharedMariaDb().Stop(/*hard=*/true).ok());
  ASSERT_TRUE(applier.RunOneCycle(Later()).ok());
  EXPECT_FALSE(applier.Stats().parent_reachable);
  EXPECT_GE(writer_->Stats().db_errors, 1u);
  EXPECT_EQ(Pending(a), 111u);
  auto open = journal_->OpenBatches();
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->empty());  // never committed: abandoned, the bytes wait
  Accept("n1", 2, {{a, 222}});  // reporters keep being acknowledged
  ASSERT_TRUE(hsync::testing::SharedMariaDb().StartAgain().ok());
  ASSERT_TRUE(applier.RunOneCycle(Later() + absl::Hours(1)).ok());
  EXPECT_TRUE(applier.Stats().parent_reachable);
  EXPECT_EQ(Usage(*panel_, a), 9u + 333u);
  EXPECT_EQ(Pending(a), 0u);
}

TEST_F(DatabaseWriterTest, NoAccessAndAWrongSchemaAreClearErrors) {
  auto root = Root();
  // A database without the panel's tables.
  const std::string empty = hsync::testing::UniqueDatabaseName("empty");
  ASSERT_TRUE(root->Execute(absl::StrCat("CREATE DATABASE `", empty, "`")).ok());
  ParentDatabaseOptions o = DbOptions(*panel_);
  o.database = empty;
  auto got = ParentDatabase(o).Get();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(got.status().message().find("no table `user`"), std::string::npos) << got.status();
  // A `user` table that is not the panel's.
  ASSERT_TRUE(root->Execute(absl::StrCat("CREATE TABLE `", empty,
                                         "`.user (uuid VARCHAR(36), current_usage BIGINT)"))
                  .ok());
  got = ParentDatabase(o).Get();
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("lacks column(s) name, usage_limit"), std::string::npos)
      << got.status();
  // An account that may read the panel's database but not create the hub's.
  ASSERT_TRUE(root->Execute("CREATE USER IF NOT EXISTS 'h4_reader'@'localhost' IDENTIFIED BY 'pw'")
                  .ok());
  ASSERT_TRUE(root->Execute(absl::StrCat("GRANT SELECT, UPDATE ON `",
                                         panel_->runner().options().database,
                                         "`.* TO 'h4_reader'@'localhost'"))
                  .ok());
  o = DbOptions(*panel_);
  o.user = "h4_reader";
  o.password = "pw";
  got = ParentDatabase(o).Get();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied) << got.status();
  EXPECT_NE(got.status().message().find("GRANT ALL ON `" + hub_database_ + "`.*"),
            std::string::npos)
      << got.status();
  EXPECT_EQ(got.status().message().find("pw"), std::string::npos);  // never the password
  // A wrong password.
  o.password = "wrong";
  got = ParentDatabase(o).Get();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied) << got.status();
}


// One read of `source`, collected into a list (nullopt: unchanged).
absl::StatusOr<std::optional<PanelUserList>> ReadList(RosterSource& source) {
  PanelUserList list;
  auto skipped = source.Read([&list](hiddify_sync::v1::User user) {
    list.users.push_back(std::move(user));
  });
  if (!skipped.ok()) return skipped.status();
  if (!skipped->has_value()) return std::optional<PanelUserList>();
  list.skipped = std::move(**skipped);
  return std::optional<PanelUserList>(std::move(list));
}

TEST_F(DatabaseWriterTest, TheRosterFromTheDatabaseEqualsTheApisListAndProbesCheaply) {
  auto panel = TestPanel::Start();
  ASSERT_NE(panel, nullptr);
  const std::string db_name = panel->runner().options().database;
  std::vector<std::string> uuids;
  for (int i = 0; i < 8; ++i) uuids.push_back(NewUuid());
  panel->CreateUser(uuids[0], 10 * kBytesPerGiB, 3);                        // not started
  panel->CreateUser(uuids[1], 10 * kBytesPerGiB, 11 * kBytesPerGiB, "2024-01-01");  // over quota
  panel->CreateUser(uuids[2], 10 * kBytesPerGiB, 10 * kBytesPerGiB, "2024-01-01", 100000);  // = limit
  panel->CreateUser(uuids[3], 10 * kBytesPerGiB, 0, "2020-01-01", 30);     // expired
  panel->CreateUser(uuids[4], 10 * kBytesPerGiB, 0, "2099-01-01", 30);     // future start
  panel->CreateUser(uuids[5], 10 * kBytesPerGiB, 0, std::nullopt, -1);      // no days left
  panel->CreateUser(uuids[6], 10 * kBytesPerGiB, 0, "2024-01-01", 100000);
  panel->CreateUser(uuids[7], 10 * kBytesPerGiB, 0, "2024-01-01", 100000);
  auto conn = Root(db_name);
  for (const std::string& sql :
       {absl::StrCat("UPDATE user SET comment = NULL, lang = NULL, telegram_id = 123456789012, "
                     "mode = 'monthly', last_reset_time = '2024-02-01', enable = 0 WHERE uuid = ",
                     conn->Quote(uuids[6])),
        absl::StrCat("UPDATE user SET name = 'Ünï \\'q\\' \"x\"', comment = 'c', lang = 'fa', "
                     "wg_pk = NULL, last_online = '2024-03-04 05:06:07' WHERE uuid = ",
                     conn->Quote(uuids[7]))}) {
    ASSERT_TRUE(conn->Execute(sql).ok()) << sql;
  }
  ApiRosterSource api(panel->Client());
  ParentDatabaseOptions o = DbOptions(*panel);
  DatabaseRosterSource database(std::make_unique<ParentDatabase>(o), [] { return PanelToday(); });
  auto from_api = ReadList(api);
  auto from_db = ReadList(database);
  ASSERT_TRUE(from_api.ok()) << from_api.status();
  ASSERT_TRUE(from_db.ok()) << from_db.status();
  ASSERT_TRUE(from_api->has_value() && from_db->has_value());
  auto by_uuid = [](const PanelUserList& list) {
    std::map<std::string, std::string> m;
    for (const auto& u : list.users) m[u.uuid()] = u.DebugString();
    return m;
  };
  EXPECT_TRUE((*from_api)->skipped.empty());
  EXPECT_TRUE((*from_db)->skipped.empty());
  EXPECT_EQ(by_uuid(**from_db), by_uuid(**from_api));
  EXPECT_EQ((*from_db)->users.size(), uuids.size());
  std::map<std::string, bool> active;
  for (const auto& u : (*from_db)->users) active[u.uuid()] = u.is_active();
  EXPECT_EQ(active[uuids[0]], true);
  EXPECT_EQ(active[uuids[1]], false);
  EXPECT_EQ(active[uuids[2]], true);
  EXPECT_EQ(active[uuids[3]], false);
  EXPECT_EQ(active[uuids[4]], true);
  EXPECT_EQ(active[uuids[5]], false);
  EXPECT_EQ(active[uuids[6]], false);

  // Nothing changed: only the probe runs.
  auto again = ReadList(database);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->has_value());
  EXPECT_EQ(database.full_reads(), 1u);
  EXPECT_EQ(database.probes_unchanged(), 1u);
  // NULL and "" are different rows for the probe.
  ASSERT_TRUE(conn->Execute(absl::StrCat("UPDATE user SET comment = '' WHERE uuid = ",
                                         conn->Quote(uuids[6])))
                  .ok());
  again = ReadList(database);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ(database.full_reads(), 2u);
}

}  // namespace
}  // namespace hsync::hub
