// The real hub binary with [parent] write = "database" against panelsim over
// real MariaDB: a REAL SIGKILL between the parent's commit and the journal's
// mark (not applied twice) and before the parent's commit (applied once),
// made deterministic by holding the parent row's lock and the journal's
// SQLite write lock from the test; and a start refused with a clear error on
// a database that is not the panel's.
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/mariadb.h"
#include "common/units.h"
#include "hub/journal/journal_sqlite.h"
#include "tests/hub/hub_harness.h"
#include "tests/hub/parent_client_test_panel.h"
#include "tests/support/test_mariadb.h"

namespace hsync::hub::testing {
namespace {

std::unique_ptr<MariaDbConnection> Root(const std::string& database = "") {
  auto conn = MariaDbConnection::Connect(hsync::testing::SharedMariaDb().Options(database));
  EXPECT_TRUE(conn.ok()) << conn.status();
  return conn.ok() ? std::move(*conn) : nullptr;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return condition();
}

class HubDatabaseModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    panel_ = TestPanel::Start();
    ASSERT_NE(panel_, nullptr);
    hub_database_ = hsync::testing::UniqueDatabaseName("hubdb");
  }

  HubSetup DatabaseSetup() {
    HubSetup setup;
    setup.parent_url = panel_->runner().base_url();
    setup.parent_api_key = panel_->runner().api_key();
    setup.node_tokens = MakeNodeTokens(1);
    setup.apply_interval = "50ms";
    setup.max_apply_delay = "0s";
    setup.parent_toml = absl::StrCat(
        "write = \"database\"\n\n[parent.database]\nsocket = \"",
        hsync::testing::SharedMariaDb().socket_path(), "\"\nuser = \"root\"\ndatabase = \"",
        panel_->runner().options().database, "\"\nhub_database = \"", hub_database_, "\"\n");
    return setup;
  }

  std::unique_ptr<HubProcess> StartHub(HubSetup setup) {
    auto hub = HubProcess::Start(std::move(setup));
    EXPECT_TRUE(hub.ok()) << hub.status();
    return hub.ok() ? *std::move(hub) : nullptr;
  }

  // Open batches in the hub's journal, read from its file as the hub runs.
  int64_t OpenBatches(HubProcess& hub) {
    auto db = SqliteDb::Open(hub.dir() + "/journal.db", 1000);
    if (!db.ok()) return -1;
    auto n = db->QueryText("SELECT count(*) FROM batches");
    int64_t v = -1;
    if (n.ok()) (void)absl::SimpleAtoi(*n, &v);
    return v;
  }

  int64_t AppliedBatchRows() {
    auto conn = Root();
    auto rs = conn->Query(absl::StrCat("SELECT COUNT(*) FROM `", hub_database_, "`.applied_batches"));
    if (!rs.ok()) return -1;  // not created yet
    int64_t n = -1;
    (void)absl::SimpleAtoi(rs->rows[0][0].value_or(""), &n);
    return n;
  }

  // Holds the lock of the user's row on the parent (as a long admin
  // transaction would) until Release().
  struct RowLock {
    std::unique_ptr<MariaDbConnection> conn;
    void Release() { ASSERT_TRUE(conn->Commit().ok()); }
  };
  RowLock LockRow(const std::string& uuid) {
    RowLock lock{Root(panel_->runner().options().database)};
    EXPECT_TRUE(lock.conn->Begin().ok());
    EXPECT_TRUE(lock.conn
                    ->Query(absl::StrCat("SELECT id FROM user WHERE uuid = ",
                                         lock.conn->Quote(uuid), " FOR UPDATE"))
                    .ok());
    return lock;
  }

  std::unique_ptr<TestPanel> panel_;
  std::string hub_database_;
};

TEST_F(HubDatabaseModeTest, KilledAfterTheParentsCommitBeforeTheJournalsMarkIsNotAppliedTwice) {
  const std::string uuid = TestUserUuid(1, 0x41);
  panel_->CreateUser(uuid, 1000 * kBytesPerGiB, 1000, "2024-01-01");
  std::unique_ptr<HubProcess> hub = StartHub(DatabaseSetup());
  ASSERT_NE(hub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return AppliedBatchRows() == 0; }, absl::Seconds(10)));

  RowLock row = LockRow(uuid);  // the hub's batch waits on it, after journaling the batch
  SimulatedChild child("node-0", hub->setup().node_tokens.at("node-0"), hub->channel());
  ASSERT_TRUE(child.Report({{uuid, 123'456'789}}).ok());
  ASSERT_TRUE(WaitFor([&] { return OpenBatches(*hub) == 1; }, absl::Seconds(10)));

  // Hold the journal's write lock: the hub's mark after the parent's commit blocks.
  auto journal = SqliteDb::Open(hub->dir() + "/journal.db", 1000);
  ASSERT_TRUE(journal.ok()) << journal.status();
  ASSERT_TRUE(journal->Exec("BEGIN IMMEDIATE").ok());
  row.Release();
  ASSERT_TRUE(WaitFor([&] { return AppliedBatchRows() == 1; }, absl::Seconds(8)))
      << hub->ReadLog();
  hub->Kill();  // a real SIGKILL: committed on the parent, still open in the journal
  ASSERT_TRUE(journal->Exec("ROLLBACK").ok());
  EXPECT_EQ(panel_->Usage(uuid), 1000u + 123'456'789u);
  EXPECT_EQ(OpenBatches(*hub), 1);

  ASSERT_TRUE(hub->Restart().ok());
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(20)));
  EXPECT_EQ(panel_->Usage(uuid), 1000u + 123'456'789u);  // not twice
  EXPECT_EQ(OpenBatches(*hub), 0);
  auto status = hub->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->parent_write_mode(), "database");
  EXPECT_EQ(status->in_doubt_batches_resolved(), 1u);
  EXPECT_EQ(status->batches_applied(), 0u);
  EXPECT_EQ(status->pending_bytes(), 0u);
  EXPECT_NE(hub->ReadLog().find("applied on the parent, marked done"), std::string::npos);

  // And it goes on: the next bytes are applied once.
  ASSERT_TRUE(child.Report({{uuid, 11}}).ok());
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(20)));
  EXPECT_EQ(panel_->Usage(uuid), 1000u + 123'456'800u);
}

TEST_F(HubDatabaseModeTest, KilledBeforeTheParentsCommitIsAppliedOnce) {
  const std::string uuid = TestUserUuid(2, 0x41);
  panel_->CreateUser(uuid, 1000 * kBytesPerGiB, 7, "2024-01-01");
  std::unique_ptr<HubProcess> hub = StartHub(DatabaseSetup());
  ASSERT_NE(hub, nullptr);

  RowLock row = LockRow(uuid);
  SimulatedChild child("node-0", hub->setup().node_tokens.at("node-0"), hub->channel());
  ASSERT_TRUE(child.Report({{uuid, 5'000'000'001}}).ok());
  ASSERT_TRUE(WaitFor([&] { return OpenBatches(*hub) == 1; }, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(100));  // the hub's transaction waits on the row
  hub->Kill();  // a real SIGKILL mid-transaction: MariaDB rolls it back
  row.Release();
  EXPECT_EQ(panel_->Usage(uuid), 7u);
  EXPECT_EQ(AppliedBatchRows(), 0);

  ASSERT_TRUE(hub->Restart().ok());
  ASSERT_TRUE(hub->WaitUntilApplied(absl::Seconds(20)));
  EXPECT_EQ(panel_->Usage(uuid), 7u + 5'000'000'001u);  // once
  auto status = hub->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->in_doubt_batches_resolved(), 1u);
  EXPECT_EQ(status->batches_applied(), 1u);
  EXPECT_NE(hub->ReadLog().find("not on the parent, its bytes stay pending"), std::string::npos);
}

TEST_F(HubDatabaseModeTest, AStartOnADatabaseThatIsNotThePanelsIsRefusedNamingIt) {
  auto root = Root();
  const std::string other = hsync::testing::UniqueDatabaseName("notpanel");
  ASSERT_TRUE(root->Execute(absl::StrCat("CREATE DATABASE `", other, "`")).ok());
  HubSetup setup = DatabaseSetup();
  setup.parent_toml = absl::StrCat("write = \"database\"\n\n[parent.database]\nsocket = \"",
                                   hsync::testing::SharedMariaDb().socket_path(),
                                   "\"\ndatabase = \"", other, "\"\n");
  auto hub = HubProcess::Start(setup);
  ASSERT_FALSE(hub.ok());
  EXPECT_NE(hub.status().message().find(absl::StrCat("parent database ", other,
                                                     " has no table `user`")),
            std::string::npos)
      << hub.status();
}

}  // namespace
}  // namespace hsync::hub::testing
