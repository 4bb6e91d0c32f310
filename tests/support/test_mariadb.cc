#include "tests/support/test_mariadb.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "tests/support/child_process.h"

namespace hsync::testing {
namespace {

constexpr absl::Duration kReadyTimeout = absl::Seconds(60);
constexpr absl::Duration kCleanStopTimeout = absl::Seconds(10);

// Server flags shared by the template build and every test server.
std::vector<std::string> ServerFlags() {
  return {"--skip-networking",
          "--user=root",
          "--innodb-buffer-pool-size=256M",
          "--innodb-flush-log-at-trx-commit=2",
          "--skip-log-bin",
          "--max-connections=1000",
          "--innodb-log-file-size=256M"};
}

std::string FindProgram(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) dirs = absl::StrSplit(path, ':', absl::SkipEmpty());
  for (const char* extra : {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}) {
    dirs.emplace_back(extra);
  }
  for (const std::string& dir : dirs) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Last `max_bytes` of a file, for error messages.
std::string FileTail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::StrCat("(no ", path, ")");
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  if (s.size() > max_bytes) s = "..." + s.substr(s.size() - max_bytes);
  return s;
}

// Forks and execs `argv` with stdout/stderr appended to `log_path`; the child
// gets SIGKILL when the forking thread dies (PR_SET_PDEATHSIG is per thread:
// start servers from the test's main thread). Returns the pid; we reap it.
absl::StatusOr<int> SpawnDetached(const std::vector<std::string>& argv,
                                  const std::string& log_path) {
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv, log_path));
  // The server is tracked by pid in TestMariaDb (its header keeps no ChildProcess).
  return child.Release();
}

// Runs `argv` to completion; non-zero exit -> error with the log's tail.
absl::Status RunToCompletion(const std::vector<std::string>& argv, const std::string& log_path,
                             absl::Duration timeout) {
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(argv, log_path);
  if (!child.ok()) return child.status();
  absl::StatusOr<int> code = child->Wait(timeout);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " exited with ", *code, "; log ", log_path,
                                            ":\n", FileTail(log_path)));
  }
  return absl::OkStatus();
}

// Waits for `pid` (our child) to exit; true if it did within `timeout`.
bool WaitExit(int pid, absl::Duration timeout) {
  return WaitFor(
      [pid] {
        const pid_t r = ::waitpid(pid, nullptr, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD);
      },
      timeout);
}

// Starts mariadbd on `datadir` and waits until root can connect over `socket`.
absl::StatusOr<int> StartServer(const std::string& mariadbd, const std::string& datadir,
                                const std::string& socket, const std::string& run_dir) {
  std::vector<std::string> argv = {mariadbd, "--no-defaults", "--datadir=" + datadir,
                                   "--socket=" + socket, "--pid-file=" + run_dir + "/mysqld.pid",
                                   "--log-error=" + run_dir + "/error.log",
                                   "--tmpdir=" + run_dir};
  for (std::string& flag : ServerFlags()) argv.push_back(std::move(flag));
  ASSIGN_OR_RETURN(const int pid, SpawnDetached(argv, run_dir + "/mariadbd.out"));
  MariaDbOptions options;
  options.unix_socket = socket;
  options.connect_timeout = absl::Seconds(2);
  const absl::Time deadline = absl::Now() + kReadyTimeout;
  absl::Status last = absl::UnavailableError("not tried");
  while (absl::Now() < deadline) {
    auto conn = MariaDbConnection::Connect(options);
    if (conn.ok()) return pid;
    last = conn.status();
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return absl::InternalError(absl::StrCat("mariadbd exited during startup (status ", status,
                                              "); error log:\n",
                                              FileTail(run_dir + "/error.log")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  WaitExit(pid, absl::Seconds(5));
  return absl::DeadlineExceededError(
      absl::StrCat("mariadbd not accepting connections after ", absl::FormatDuration(kReadyTimeout),
                   " (last error: ", last.ToString(), "); error log:\n",
                   FileTail(run_dir + "/error.log")));
}

// Sends SIGTERM, waits, then SIGKILL.
void StopServer(int pid, bool hard) {
  if (pid <= 0) return;
  if (!hard) {
    ::kill(pid, SIGTERM);
    if (WaitExit(pid, kCleanStopTimeout)) return;
  }
  ::kill(pid, SIGKILL);
  WaitExit(pid, absl::Seconds(10));
}

constexpr char kOwnerFile[] = "owner.pid";

// Records this test process as the owner of `dir` (see RemoveStaleServerDirs).
void WriteOwner(const std::string& dir) {
  std::ofstream(dir + "/" + kOwnerFile) << ::getpid() << "\n";
}

absl::StatusOr<std::string> BuildTemplateDatadir(const std::string& mariadbd,
                                                 const std::string& path);

// A shut-down, freshly initialised datadir is kept once per machine and
// mariadbd build (sparse, a few MB); each server starts from a copy of it.
// Building it takes ~2 s; copying it ~0.1 s.
absl::StatusOr<std::string> TemplateDatadir(const std::string& mariadbd) {
  struct stat info;
  if (::stat(mariadbd.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot stat ", mariadbd));
  }
  const std::string path = absl::StrCat("/tmp/hsync-mariadb-template-", info.st_size, "-",
                                        info.st_mtime, "-v1");
  if (::access((path + "/mysql").c_str(), F_OK) == 0) return path;

  // Test processes start at once (ctest -j): one builds, the others wait on
  // the lock and then find the template. Without it two bootstraps raced and
  // one failed ("Unknown table 'mysql.tmp_user_sys'").
  const std::string lock_path = path + ".lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", lock_path, ": ", std::strerror(errno)));
  }
  while (::flock(lock_fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      const int error = errno;
      ::close(lock_fd);
      return absl::InternalError(absl::StrCat("flock ", lock_path, ": ", std::strerror(error)));
    }
  }
  absl::StatusOr<std::string> built = BuildTemplateDatadir(mariadbd, path);
  ::close(lock_fd);  // releases the lock
  return built;
}

// Builds the template at `path` unless another process did it first; the
// caller holds the template lock.
absl::StatusOr<std::string> BuildTemplateDatadir(const std::string& mariadbd,
                                                 const std::string& path) {
  if (::access((path + "/mysql").c_str(), F_OK) == 0) return path;
  std::error_code ignored_error;
  std::filesystem::remove_all(path, ignored_error);  // a half-built one from a killed build

  const std::string install_db = FindProgram("mariadb-install-db");
  if (install_db.empty()) return absl::NotFoundError("mariadb-install-db not found in PATH");
  const std::string build = MakeTempDir("hsync-mariadb-template-build");
  WriteOwner(build);
  const std::string datadir = build + "/data";
  absl::Status status = RunToCompletion(
      {install_db, "--no-defaults", "--datadir=" + datadir,
       "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root",
       "--tmpdir=" + build},
      build + "/install.log", absl::Seconds(120));
  if (status.ok()) {
    // One start and clean shutdown creates the redo log at our size.
    absl::StatusOr<int> pid = StartServer(mariadbd, datadir, build + "/mysqld.sock", build);
    if (pid.ok()) {
      StopServer(*pid, /*hard=*/false);
    } else {
      status = pid.status();
    }
  }
  if (status.ok()) {
    status = RunToCompletion({"/bin/cp", "-a", "--sparse=always", datadir, build + "/template"},
                             build + "/cp.log", absl::Seconds(120));
  }
  if (status.ok() && ::rename((build + "/template").c_str(), path.c_str()) != 0 &&
      errno != EEXIST && errno != ENOTEMPTY) {
    status = absl::InternalError(absl::StrCat("rename to ", path, ": ", std::strerror(errno)));
  }
  std::error_code ignored;
  std::filesystem::remove_all(build, ignored);
  if (!status.ok()) return status;
  return path;
}

// Removes server dirs left behind by crashed test processes (their mariadbd
// died with them through PR_SET_PDEATHSIG): the owning test process is gone,
// or no owner is recorded and the dir is untouched for an hour. The server's
// own pid says nothing: a test that hard-kills its server and starts it
// again has a dead mariadbd pid in a dir it still uses.
void RemoveStaleServerDirs() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    const bool server_dir = name.rfind("hsync-mariadb-", 0) == 0 &&
                            name.size() == std::string("hsync-mariadb-XXXXXX").size();
    const bool build_dir = name.rfind("hsync-mariadb-template-build-", 0) == 0;
    if (!server_dir && !build_dir) continue;
    std::error_code entry_ec;
    if (!entry.is_directory(entry_ec)) continue;
    bool stale = false;
    std::ifstream pid_file(entry.path() / kOwnerFile);
    int pid = 0;
    if (pid_file >> pid && pid > 0) {
      stale = ::kill(pid, 0) != 0 && errno == ESRCH;
    } else {
      const auto age = fs::file_time_type::clock::now() - fs::last_write_time(entry, entry_ec);
      stale = !entry_ec && age > std::chrono::hours(1);
    }
    if (stale) fs::remove_all(entry.path(), entry_ec);
  }
}

std::mutex g_shared_mutex;
std::unique_ptr<TestMariaDb>* g_shared = new std::unique_ptr<TestMariaDb>();

bool ValidDatabaseName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestMariaDb>> TestMariaDb::Start() {
  const std::string mariadbd = FindProgram("mariadbd");
  if (mariadbd.empty()) return absl::NotFoundError("mariadbd not found in PATH or /usr/sbin");
  RemoveStaleServerDirs();
  ASSIGN_OR_RETURN(const std::string template_dir, TemplateDatadir(mariadbd));
  std::unique_ptr<TestMariaDb> db(new TestMariaDb());
  db->dir_ = MakeTempDir("hsync-mariadb");
  WriteOwner(db->dir_);
  db->socket_path_ = db->dir_ + "/mysqld.sock";
  RETURN_IF_ERROR(RunToCompletion({"/bin/cp", "-a", template_dir, db->dir_ + "/data"},
                                  db->dir_ + "/cp.log", absl::Seconds(120)));
  RETURN_IF_ERROR(db->Launch());
  return db;
}

absl::Status TestMariaDb::Launch() {
  const std::string mariadbd = FindProgram("mariadbd");
  if (mariadbd.empty()) return absl::NotFoundError("mariadbd not found");
  ASSIGN_OR_RETURN(pid_, StartServer(mariadbd, dir_ + "/data", socket_path_, dir_));
  return absl::OkStatus();
}

TestMariaDb::~TestMariaDb() {
  StopServer(pid_, /*hard=*/false);
  pid_ = -1;
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

MariaDbOptions TestMariaDb::Options(const std::string& database) const {
  MariaDbOptions options;
  options.unix_socket = socket_path_;
  options.user = "root";
  options.database = database;
  return options;
}

absl::Status TestMariaDb::Stop(bool hard) {
  if (pid_ <= 0) return absl::FailedPreconditionError("test MariaDB is not running");
  StopServer(pid_, hard);
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status TestMariaDb::StartAgain() {
  if (pid_ > 0) return absl::FailedPreconditionError("test MariaDB is already running");
  return Launch();
}

absl::Status TestMariaDb::CreateHiddifyDatabase(const std::string& database,
                                                const std::string& owner_uuid) {
  if (!ValidDatabaseName(database)) {
    return absl::InvalidArgumentError(absl::StrCat("bad database name \"", database, "\""));
  }
  const std::string schema_path = std::string(HSYNC_SOURCE_DIR) + "/tests/fixtures/hiddify_schema.sql";
  std::ifstream in(schema_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", schema_path));
  std::ostringstream text;
  text << in.rdbuf();
  // Statements end with ';' at the end of a line; "--" lines are comments.
  std::vector<std::string> statements;
  std::string current;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty() || absl::StartsWith(trimmed, "--")) continue;
    absl::StrAppend(&current, line, "\n");
    if (absl::EndsWith(trimmed, ";")) {
      statements.push_back(std::move(current));
      current.clear();
    }
  }
  if (!absl::StripAsciiWhitespace(current).empty()) statements.push_back(current);

  ASSIGN_OR_RETURN(std::unique_ptr<MariaDbConnection> conn, MariaDbConnection::Connect(Options()));
  RETURN_IF_ERROR(conn->Execute(absl::StrCat("DROP DATABASE IF EXISTS `", database, "`")).status());
  RETURN_IF_ERROR(conn->Execute(absl::StrCat("CREATE DATABASE `", database,
                                             "` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"))
                      .status());
  RETURN_IF_ERROR(conn->Execute(absl::StrCat("USE `", database, "`")).status());
  for (const std::string& statement : statements) {
    RETURN_IF_ERROR(conn->Execute(statement).status());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedStatement> insert,
                   conn->Prepare("INSERT INTO admin_user (id, mode, can_add_admin, max_users, "
                                 "max_active_users, parent_admin_id, uuid, name) "
                                 "VALUES (1, 'super_admin', 1, 100, 100, NULL, ?, 'owner')"));
  RETURN_IF_ERROR(insert->Execute({owner_uuid}).status());
  return absl::OkStatus();
}

void StopSharedMariaDb() {
  std::lock_guard<std::mutex> lock(g_shared_mutex);
  g_shared->reset();
}

TestMariaDb& SharedMariaDb() {
  std::lock_guard<std::mutex> lock(g_shared_mutex);
  if (*g_shared == nullptr) {
    absl::StatusOr<std::unique_ptr<TestMariaDb>> started = TestMariaDb::Start();
    if (!started.ok()) {
      std::fprintf(stderr, "FATAL: cannot start the test MariaDB: %s\n",
                   started.status().ToString().c_str());
      std::fflush(stderr);
      std::abort();
    }
    *g_shared = *std::move(started);
  }
  return **g_shared;
}

std::string UniqueDatabaseName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return absl::StrCat("t_", prefix, "_", counter.fetch_add(1) + 1);
}

}  // namespace hsync::testing
