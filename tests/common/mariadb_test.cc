// MariaDbConnection against the shared test server: connecting, error
// mapping, text and prepared queries of every SqlValue type, transactions.
#include "common/mariadb.h"

#include <cstdint>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/test_mariadb.h"

namespace hsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::SharedMariaDb;
using testing::UniqueDatabaseName;

class MariaDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = UniqueDatabaseName("mariadb");
    auto root = MariaDbConnection::Connect(SharedMariaDb().Options());
    ASSERT_TRUE(root.ok()) << root.status();
    ASSERT_TRUE((*root)->Execute("CREATE DATABASE " + database_).ok());
    conn_ = Connect();
    ASSERT_NE(conn_, nullptr);
    ASSERT_TRUE(conn_
                    ->Execute("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, "
                              "i BIGINT NULL, u BIGINT UNSIGNED NULL, d DOUBLE NULL, "
                              "s MEDIUMTEXT NULL, k VARCHAR(36) NULL UNIQUE, "
                              "dt DATETIME NULL, day DATE NULL) "
                              "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
                    .ok());
  }

  std::unique_ptr<MariaDbConnection> Connect() {
    auto conn = MariaDbConnection::Connect(SharedMariaDb().Options(database_));
    EXPECT_TRUE(conn.ok()) << conn.status();
    return conn.ok() ? *std::move(conn) : nullptr;
  }

  int64_t CountRows() {
    auto other = Connect();
    auto rs = other->Query("SELECT COUNT(*) FROM t");
    EXPECT_TRUE(rs.ok()) << rs.status();
    return std::stoll(*rs->rows[0][0]);
  }

  std::string database_;
  std::unique_ptr<MariaDbConnection> conn_;
};

TEST_F(MariaDbTest, ConnectsAndPings) {
  EXPECT_TRUE(conn_->Ping());
  EXPECT_EQ(conn_->options().database, database_);
  auto rs = conn_->Query("SELECT DATABASE(), @@character_set_client, @@autocommit");
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->columns.size(), 3u);
  EXPECT_EQ(*rs->rows[0][0], database_);
  EXPECT_EQ(*rs->rows[0][1], "utf8mb4");
  EXPECT_EQ(*rs->rows[0][2], "1");
}

TEST(MariaDbConnectTest, BadSocketIsUnavailableWithAClearMessage) {
  MariaDbOptions options;
  options.unix_socket = "/nonexistent/hsync/mysqld.sock";
  options.database = "somedb";
  options.password = "do-not-print-me";
  auto conn = MariaDbConnection::Connect(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable);
  const std::string message(conn.status().message());
  EXPECT_THAT(message, HasSubstr("/nonexistent/hsync/mysqld.sock"));
  EXPECT_THAT(message, HasSubstr("somedb"));
  EXPECT_THAT(message, HasSubstr("2002"));
  EXPECT_THAT(message, Not(HasSubstr("do-not-print-me")));
}

TEST(MariaDbConnectTest, UnknownDatabaseIsNotFound) {
  auto conn = MariaDbConnection::Connect(SharedMariaDb().Options("no_such_database"));
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(conn.status().message()), HasSubstr("no_such_database"));
  EXPECT_THAT(std::string(conn.status().message()), HasSubstr("1049"));
}

TEST(MariaDbConnectTest, WrongPasswordIsPermissionDeniedAndNotPrinted) {
  MariaDbOptions options = SharedMariaDb().Options();
  options.password = "wrong-secret-xyz";
  auto conn = MariaDbConnection::Connect(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(conn.status().message()), Not(HasSubstr("wrong-secret-xyz")));
}

TEST_F(MariaDbTest, PreparedRoundTripOfEverySqlValueType) {
  const std::string utf8 = "h\xC3\xA9llo \xF0\x9F\x91\x8B \xE4\xB8\x96\xE7\x95\x8C 'q' \"d\" \\";
  const std::string long_text(100'000, 'x');
  auto insert = conn_->Prepare("INSERT INTO t (i, u, d, s, k, dt, day) VALUES (?, ?, ?, ?, ?, ?, ?)");
  ASSERT_TRUE(insert.ok()) << insert.status();
  const std::vector<std::vector<SqlValue>> rows = {
      {int64_t{-1}, uint64_t{0}, 0.1, utf8, std::string("k1"), std::string("0001-01-01 00:00:00"),
       std::string("2024-02-29")},
      {std::numeric_limits<int64_t>::min(), std::numeric_limits<uint64_t>::max(), -1.5e300,
       long_text, std::string("k2"), std::string("2024-01-05 07:08:09"), std::monostate()},
      {std::numeric_limits<int64_t>::max(), uint64_t{1} << 63, 9.313225746154785e-10,
       std::string(), std::monostate(), std::monostate(), std::monostate()},
      {std::monostate(), std::monostate(), std::monostate(), std::monostate(), std::monostate(),
       std::monostate(), std::monostate()},
  };
  std::vector<uint64_t> ids;
  for (const auto& row : rows) {
    auto affected = (*insert)->Execute(row);
    ASSERT_TRUE(affected.ok()) << affected.status();
    EXPECT_EQ(*affected, 1u);
    ids.push_back(conn_->LastInsertId());
  }
  EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2, 3, 4}));

  auto select = conn_->Prepare("SELECT id, i, u, d, s, k, dt, day FROM t WHERE id >= ? ORDER BY id");
  ASSERT_TRUE(select.ok()) << select.status();
  auto rs = (*select)->Query({int64_t{1}});
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->columns,
            (std::vector<std::string>{"id", "i", "u", "d", "s", "k", "dt", "day"}));
  EXPECT_EQ(rs->ColumnIndex("u"), 2);
  EXPECT_EQ(rs->ColumnIndex("missing"), -1);
  ASSERT_EQ(rs->rows.size(), 4u);
  const auto& r = rs->rows;
  EXPECT_EQ(r[0][1], "-1");
  EXPECT_EQ(r[0][2], "0");
  EXPECT_EQ(std::stod(*r[0][3]), 0.1);
  EXPECT_EQ(r[0][4], utf8);
  EXPECT_EQ(r[0][5], "k1");
  EXPECT_EQ(r[0][6], "0001-01-01 00:00:00");
  EXPECT_EQ(r[0][7], "2024-02-29");
  EXPECT_EQ(r[1][1], "-9223372036854775808");
  EXPECT_EQ(r[1][2], "18446744073709551615");
  EXPECT_EQ(std::stod(*r[1][3]), -1.5e300);
  EXPECT_EQ(r[1][4], long_text);
  EXPECT_EQ(r[1][6], "2024-01-05 07:08:09");
  EXPECT_EQ(r[1][7], std::nullopt);
  EXPECT_EQ(r[2][1], "9223372036854775807");
  EXPECT_EQ(r[2][2], "9223372036854775808");
  EXPECT_EQ(std::stod(*r[2][3]), 9.313225746154785e-10);
  EXPECT_EQ(r[2][4], "");
  EXPECT_EQ(r[2][5], std::nullopt);
  for (size_t c = 1; c < r[3].size(); ++c) EXPECT_EQ(r[3][c], std::nullopt) << c;

  // The text protocol gives the same values.
  auto text = conn_->Query("SELECT id, i, u, s, k, dt FROM t ORDER BY id");
  ASSERT_TRUE(text.ok()) << text.status();
  ASSERT_EQ(text->rows.size(), 4u);
  EXPECT_EQ(text->rows[0][3], utf8);
  EXPECT_EQ(text->rows[1][2], "18446744073709551615");
  EXPECT_EQ(text->rows[1][3], long_text);
  EXPECT_EQ(text->rows[0][5], "0001-01-01 00:00:00");
  EXPECT_EQ(text->rows[3][1], std::nullopt);

  // A statement can be run again with other parameters.
  auto again = (*select)->Query({int64_t{4}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->rows.size(), 1u);
}

TEST_F(MariaDbTest, PreparedUpdateReturnsAffectedRowsAndChecksParameterCount) {
  ASSERT_TRUE(conn_->Execute("INSERT INTO t (i) VALUES (1), (2), (3)").ok());
  EXPECT_EQ(conn_->LastInsertId(), 1u);
  auto update = conn_->Prepare("UPDATE t SET i = i + ? WHERE i >= ?");
  ASSERT_TRUE(update.ok()) << update.status();
  auto affected = (*update)->Execute({int64_t{10}, int64_t{2}});
  ASSERT_TRUE(affected.ok()) << affected.status();
  EXPECT_EQ(*affected, 2u);
  auto wrong = (*update)->Execute({int64_t{10}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  auto text = conn_->Execute("DELETE FROM t WHERE i > 10");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, 2u);
}

TEST_F(MariaDbTest, QuoteEscapesForTheServer) {
  const std::string nasty = "it's a \"test\" \\ with \n newline and \xF0\x9F\x98\x80";
  ASSERT_TRUE(conn_->Execute("INSERT INTO t (s) VALUES (" + conn_->Quote(nasty) + ")").ok());
  auto rs = conn_->Query("SELECT s FROM t");
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->rows[0][0], nasty);
}

TEST_F(MariaDbTest, DuplicateKeyIsAlreadyExists) {
  auto insert = conn_->Prepare("INSERT INTO t (k) VALUES (?)");
  ASSERT_TRUE(insert.ok());
  ASSERT_TRUE((*insert)->Execute({std::string("same")}).ok());
  auto again = (*insert)->Execute({std::string("same")});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("1062"));
  auto text = conn_->Execute("INSERT INTO t (k) VALUES ('same')");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(MariaDbTest, UnknownTableIsNotFoundAndSyntaxErrorIsInternal) {
  auto missing = conn_->Query("SELECT * FROM no_such_table");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto prepared = conn_->Prepare("SELECT * FROM no_such_table WHERE id = ?");
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.status().code(), absl::StatusCode::kNotFound);
  auto syntax = conn_->Execute("SELEKT 1");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(syntax.status().message()), HasSubstr("SELEKT 1"));
  // The connection is still usable after errors.
  EXPECT_TRUE(conn_->Query("SELECT 1").ok());
}

TEST_F(MariaDbTest, TransactionRollsBackOnDestruction) {
  {
    Transaction tx(*conn_);
    ASSERT_TRUE(tx.status().ok()) << tx.status();
    ASSERT_TRUE(conn_->Execute("INSERT INTO t (i) VALUES (1)").ok());
    EXPECT_EQ(CountRows(), 0);  // not visible to others before commit
  }
  EXPECT_EQ(CountRows(), 0);
  auto rs = conn_->Query("SELECT COUNT(*) FROM t");
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(rs->rows[0][0], "0");
}

TEST_F(MariaDbTest, TransactionCommitIsVisibleToOthers) {
  {
    Transaction tx(*conn_);
    ASSERT_TRUE(tx.status().ok());
    ASSERT_TRUE(conn_->Execute("INSERT INTO t (i) VALUES (1), (2)").ok());
    ASSERT_TRUE(tx.Commit().ok());
    EXPECT_FALSE(tx.Commit().ok());  // only once
  }
  EXPECT_EQ(CountRows(), 2);
  // Explicit Begin/Rollback too.
  ASSERT_TRUE(conn_->Begin().ok());
  ASSERT_TRUE(conn_->Execute("DELETE FROM t").ok());
  ASSERT_TRUE(conn_->Rollback().ok());
  EXPECT_EQ(CountRows(), 2);
}

TEST_F(MariaDbTest, LockWaitTimeoutIsAborted) {
  ASSERT_TRUE(conn_->Execute("INSERT INTO t (id, i) VALUES (1, 1)").ok());
  auto other = Connect();
  ASSERT_TRUE(other->Execute("SET SESSION innodb_lock_wait_timeout = 1").ok());
  Transaction tx(*conn_);
  ASSERT_TRUE(conn_->Execute("UPDATE t SET i = 2 WHERE id = 1").ok());
  auto blocked = other->Execute("UPDATE t SET i = 3 WHERE id = 1");
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(blocked.status().message()), HasSubstr("1205"));
}

TEST_F(MariaDbTest, KilledConnectionIsUnavailable) {
  auto id = conn_->Query("SELECT CONNECTION_ID()");
  ASSERT_TRUE(id.ok());
  auto killer = Connect();
  ASSERT_TRUE(killer->Execute("KILL " + *id->rows[0][0]).ok());
  auto r = conn_->Query("SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_FALSE(conn_->Ping());
}

TEST(MariaDbErrorTest, MapsErrorNumbersToStatusCodes) {
  EXPECT_EQ(MariaDbError(2002, "m", "c").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(MariaDbError(2003, "m", "c").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(MariaDbError(2006, "m", "c").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(MariaDbError(2013, "m", "c").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(MariaDbError(1213, "m", "c").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(MariaDbError(1205, "m", "c").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(MariaDbError(1045, "m", "c").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(MariaDbError(1049, "m", "c").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MariaDbError(1146, "m", "c").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MariaDbError(1062, "m", "c").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(MariaDbError(1064, "m", "c").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(MariaDbError(1062, "Duplicate entry", "inserting user").message(),
            "inserting user: Duplicate entry (MariaDB error 1062)");
}

}  // namespace
}  // namespace hsync
