// A private mariadbd for tests: datadir and unix socket in a fresh temp dir,
// no TCP (skip-networking). The server is a child of the test process with
// PR_SET_PDEATHSIG, so it dies with the test even when the test crashes.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mariadb.h"

namespace hsync::testing {

class TestMariaDb {
 public:
  // Initialises a datadir (mariadb-install-db) and starts mariadbd on it;
  // returns once it accepts connections as root over the socket.
  static absl::StatusOr<std::unique_ptr<TestMariaDb>> Start();
  // Stops the server (SIGTERM, then SIGKILL after 10 s) and removes the dir.
  ~TestMariaDb();

  const std::string& socket_path() const { return socket_path_; }
  const std::string& dir() const { return dir_; }
  int pid() const { return pid_; }
  // Connection options as root over the socket, optionally for `database`.
  MariaDbOptions Options(const std::string& database = "") const;

  // Creates (or recreates, dropping it first) `database` from
  // tests/fixtures/hiddify_schema.sql and inserts the owner admin_user row
  // id=1, mode='super_admin', uuid=owner_uuid, name='owner'.
  absl::Status CreateHiddifyDatabase(const std::string& database, const std::string& owner_uuid);

  // Fault tests: stop the server (SIGKILL when `hard`, else a clean shutdown)
  // and start it again on the same datadir and socket.
  absl::Status Stop(bool hard);
  absl::Status StartAgain();

 private:
  TestMariaDb() = default;
  absl::Status Launch();
  std::string dir_;
  std::string socket_path_;
  int pid_ = -1;
};

// One server per test binary, started on first use and stopped at exit
// (a GoogleTest Environment registered by the support library). Aborts the
// test with a clear message if the server cannot start.
TestMariaDb& SharedMariaDb();

// A database name unique within this test process ("t_<prefix>_<n>").
std::string UniqueDatabaseName(const std::string& prefix);

}  // namespace hsync::testing
