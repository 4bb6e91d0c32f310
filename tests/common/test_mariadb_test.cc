// TestMariaDb: the schema fixture matches PANEL.md section 2, the owner row
// exists, and a hard kill + restart keeps committed data.
#include "tests/support/test_mariadb.h"

#include <signal.h>

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "common/mariadb.h"

namespace hsync::testing {
namespace {

std::unique_ptr<MariaDbConnection> ConnectOrDie(const MariaDbOptions& options) {
  auto conn = MariaDbConnection::Connect(options);
  EXPECT_TRUE(conn.ok()) << conn.status();
  return conn.ok() ? *std::move(conn) : nullptr;
}

// column name -> "COLUMN_TYPE|IS_NULLABLE|COLUMN_DEFAULT|EXTRA", in ordinal order.
std::vector<std::pair<std::string, std::string>> Columns(MariaDbConnection& conn,
                                                         const std::string& database,
                                                         const std::string& table) {
  auto stmt = conn.Prepare(
      "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
      "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? "
      "ORDER BY ORDINAL_POSITION");
  EXPECT_TRUE(stmt.ok()) << stmt.status();
  auto rs = (*stmt)->Query({database, table});
  EXPECT_TRUE(rs.ok()) << rs.status();
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : rs->rows) {
    out.emplace_back(*row[0], *row[1] + "|" + *row[2] + "|" + row[3].value_or("<none>") + "|" +
                                  row[4].value_or(""));
  }
  return out;
}

TEST(TestMariaDbTest, CreateHiddifyDatabaseMatchesPanelSchema) {
  TestMariaDb& db = SharedMariaDb();
  const std::string name = UniqueDatabaseName("schema");
  ASSERT_TRUE(db.CreateHiddifyDatabase(name, "11111111-2222-3333-4444-555555555555").ok());
  auto conn = ConnectOrDie(db.Options(name));
  ASSERT_NE(conn, nullptr);

  // COLUMN_DEFAULT "NULL" is the SQL NULL default; "<none>" means no default.
  const std::vector<std::pair<std::string, std::string>> admin_user = {
      {"id", "int(11)|NO|<none>|auto_increment"},
      {"mode", "enum('super_admin','admin','agent')|NO|<none>|"},
      {"can_add_admin", "tinyint(1)|NO|<none>|"},
      {"max_users", "int(11)|NO|<none>|"},
      {"max_active_users", "int(11)|NO|<none>|"},
      {"parent_admin_id", "int(11)|YES|NULL|"},
      {"uuid", "varchar(36)|NO|<none>|"},
      {"name", "varchar(512)|NO|<none>|"},
      {"username", "varchar(100)|YES|NULL|"},
      {"password", "varchar(100)|YES|NULL|"},
      {"comment", "varchar(512)|YES|NULL|"},
      {"telegram_id", "bigint(20)|YES|NULL|"},
      {"lang", "enum('en','fa','ru','pt','zh','my')|YES|NULL|"},
  };
  EXPECT_EQ(Columns(*conn, name, "admin_user"), admin_user);

  const std::vector<std::pair<std::string, std::string>> user = {
      {"id", "int(11)|NO|<none>|auto_increment"},
      {"last_online", "datetime|NO|<none>|"},
      {"usage_limit", "bigint(20)|NO|<none>|"},
      {"package_days", "int(11)|NO|<none>|"},
      {"mode", "enum('no_reset','monthly','weekly','daily')|NO|<none>|"},
      {"monthly", "tinyint(1)|YES|NULL|"},
      {"start_date", "date|YES|NULL|"},
      {"current_usage", "bigint(20)|NO|<none>|"},
      {"last_reset_time", "date|YES|NULL|"},
      {"added_by", "int(11)|YES|NULL|"},
      {"max_ips", "int(11)|NO|<none>|"},
      {"enable", "tinyint(1)|NO|<none>|"},
      {"ed25519_private_key", "varchar(500)|YES|NULL|"},
      {"ed25519_public_key", "varchar(100)|YES|NULL|"},
      {"wg_pk", "varchar(50)|YES|NULL|"},
      {"wg_pub", "varchar(50)|YES|NULL|"},
      {"wg_psk", "varchar(50)|YES|NULL|"},
      {"uuid", "varchar(36)|NO|<none>|"},
      {"name", "varchar(512)|NO|<none>|"},
      {"username", "varchar(100)|YES|NULL|"},
      {"password", "varchar(100)|YES|NULL|"},
      {"comment", "varchar(512)|YES|NULL|"},
      {"telegram_id", "bigint(20)|YES|NULL|"},
      {"lang", "enum('en','fa','ru','pt','zh','my')|YES|NULL|"},
  };
  EXPECT_EQ(Columns(*conn, name, "user"), user);

  // Engine, charset, unique uuid keys and foreign keys.
  auto tables = conn->Query(
      "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
      "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME");
  ASSERT_TRUE(tables.ok()) << tables.status();
  ASSERT_EQ(tables->rows.size(), 2u);
  for (const auto& row : tables->rows) {
    EXPECT_EQ(*row[1], "InnoDB") << *row[0];
    EXPECT_EQ(*row[2], "utf8mb4_general_ci") << *row[0];
  }
  auto keys = conn->Query(
      "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM "
      "information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = DATABASE() "
      "ORDER BY TABLE_NAME, CONSTRAINT_NAME");
  ASSERT_TRUE(keys.ok()) << keys.status();
  std::vector<std::string> constraints;
  for (const auto& row : keys->rows) constraints.push_back(*row[0] + "." + *row[1] + ":" + *row[2]);
  EXPECT_EQ(constraints, (std::vector<std::string>{
                             "admin_user.admin_user_ibfk_1:FOREIGN KEY",
                             "admin_user.ix_admin_user_uuid:UNIQUE",
                             "admin_user.PRIMARY:PRIMARY KEY",
                             "user.ix_user_uuid:UNIQUE",
                             "user.PRIMARY:PRIMARY KEY",
                             "user.user_ibfk_1:FOREIGN KEY",
                         }));

  // The owner row.
  auto owner = conn->Query("SELECT id, mode, uuid, name FROM admin_user");
  ASSERT_TRUE(owner.ok()) << owner.status();
  ASSERT_EQ(owner->rows.size(), 1u);
  EXPECT_EQ(*owner->rows[0][0], "1");
  EXPECT_EQ(*owner->rows[0][1], "super_admin");
  EXPECT_EQ(*owner->rows[0][2], "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(*owner->rows[0][3], "owner");
}

TEST(TestMariaDbTest, StrictModeRejectsInsertWithoutNotNullColumns) {
  TestMariaDb& db = SharedMariaDb();
  const std::string name = UniqueDatabaseName("strict");
  ASSERT_TRUE(db.CreateHiddifyDatabase(name, "aaaaaaaa-2222-3333-4444-555555555555").ok());
  auto conn = ConnectOrDie(db.Options(name));
  ASSERT_NE(conn, nullptr);
  // The earlier tool's bug (PANEL.md section 4): missing NOT NULL columns must fail.
  auto r = conn->Execute("INSERT INTO user (uuid, name) VALUES ('u1', 'n1')");
  EXPECT_FALSE(r.ok());
}

TEST(TestMariaDbTest, CreateHiddifyDatabaseRecreatesAnExistingDatabase) {
  TestMariaDb& db = SharedMariaDb();
  const std::string name = UniqueDatabaseName("recreate");
  ASSERT_TRUE(db.CreateHiddifyDatabase(name, "bbbbbbbb-2222-3333-4444-555555555555").ok());
  {
    auto conn = ConnectOrDie(db.Options(name));
    ASSERT_TRUE(conn->Execute("INSERT INTO admin_user (mode, can_add_admin, max_users, "
                              "max_active_users, uuid, name) VALUES "
                              "('admin', 0, 10, 10, 'x', 'x')")
                    .ok());
  }
  ASSERT_TRUE(db.CreateHiddifyDatabase(name, "cccccccc-2222-3333-4444-555555555555").ok());
  auto conn = ConnectOrDie(db.Options(name));
  auto rs = conn->Query("SELECT uuid FROM admin_user");
  ASSERT_TRUE(rs.ok()) << rs.status();
  ASSERT_EQ(rs->rows.size(), 1u);
  EXPECT_EQ(*rs->rows[0][0], "cccccccc-2222-3333-4444-555555555555");
}

TEST(TestMariaDbTest, HardKillAndRestartKeepsCommittedData) {
  TestMariaDb& db = SharedMariaDb();
  const std::string name = UniqueDatabaseName("restart");
  ASSERT_TRUE(db.CreateHiddifyDatabase(name, "dddddddd-2222-3333-4444-555555555555").ok());
  {
    auto conn = ConnectOrDie(db.Options(name));
    ASSERT_TRUE(conn->Execute("INSERT INTO admin_user (mode, can_add_admin, max_users, "
                              "max_active_users, parent_admin_id, uuid, name) VALUES "
                              "('agent', 0, 10, 10, 1, 'agent-uuid', 'agent')")
                    .ok());
  }
  const int old_pid = db.pid();
  auto conn = ConnectOrDie(db.Options(name));
  ASSERT_TRUE(db.Stop(/*hard=*/true).ok());
  // The old server is really gone: its pid is reaped and the old connection is dead.
  EXPECT_NE(kill(old_pid, 0), 0);
  EXPECT_FALSE(conn->Ping());
  EXPECT_FALSE(MariaDbConnection::Connect(db.Options(name)).ok());

  const absl::Status restarted = db.StartAgain();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_NE(db.pid(), old_pid);
  auto again = ConnectOrDie(db.Options(name));
  ASSERT_NE(again, nullptr);
  auto rs = again->Query("SELECT name FROM admin_user ORDER BY id");
  ASSERT_TRUE(rs.ok()) << rs.status();
  ASSERT_EQ(rs->rows.size(), 2u);
  EXPECT_EQ(*rs->rows[1][0], "agent");
}

TEST(TestMariaDbTest, CleanStopAndRestart) {
  TestMariaDb& db = SharedMariaDb();
  ASSERT_TRUE(db.Stop(/*hard=*/false).ok());
  EXPECT_FALSE(MariaDbConnection::Connect(db.Options()).ok());
  ASSERT_TRUE(db.StartAgain().ok());
  auto conn = ConnectOrDie(db.Options());
  ASSERT_NE(conn, nullptr);
  EXPECT_TRUE(conn->Ping());
}

TEST(TestMariaDbTest, StartTakesLittleTime) {
  // A second, private server: prints how long Start() takes (template copy + boot).
  const absl::Time begin = absl::Now();
  auto server = TestMariaDb::Start();
  const absl::Duration took = absl::Now() - begin;
  ASSERT_TRUE(server.ok()) << server.status();
  std::printf("TestMariaDb::Start() took %s\n", absl::FormatDuration(took).c_str());
  const std::string dir = (*server)->dir();
  auto conn = ConnectOrDie((*server)->Options());
  ASSERT_NE(conn, nullptr);
  conn.reset();
  const absl::Time stop_begin = absl::Now();
  server->reset();
  std::printf("~TestMariaDb() took %s\n",
              absl::FormatDuration(absl::Now() - stop_begin).c_str());
  // The destructor removes the directory.
  EXPECT_NE(access(dir.c_str(), F_OK), 0);
}

TEST(TestMariaDbTest, UniqueDatabaseNamesDiffer) {
  EXPECT_NE(UniqueDatabaseName("x"), UniqueDatabaseName("x"));
  EXPECT_EQ(UniqueDatabaseName("abc").rfind("t_abc_", 0), 0u);
}

}  // namespace
}  // namespace hsync::testing
