// Starting and stopping our binaries (panelsim, hub, reporter) from tests.
// Children get PR_SET_PDEATHSIG(SIGKILL) so nothing outlives a crashed test.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hsync::testing {

class ChildProcess {
 public:
  // Spawns `argv[0]` (a path) with `argv`; stdout/stderr go to `log_path`
  // (appended) when given, else are inherited.
  static absl::StatusOr<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                            const std::string& log_path = "");
  ChildProcess(ChildProcess&&) noexcept;
  ChildProcess& operator=(ChildProcess&&) noexcept;
  // Kills (SIGKILL) and reaps if still running.
  ~ChildProcess();

  int pid() const { return pid_; }
  bool Running();
  // Sends `signal`; waits up to `timeout` for exit; returns the exit status
  // (WEXITSTATUS, or 128+signal). DeadlineExceeded if still running.
  absl::StatusOr<int> Signal(int signal, absl::Duration timeout = absl::Seconds(10));
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // Gives up ownership: the process keeps running, the destructor no longer
  // kills it, and the caller must reap it. Returns the pid.
  int Release();

 private:
  ChildProcess() = default;
  int pid_ = -1;
};

// A TCP port on 127.0.0.1 that is free now, chosen below the kernel's
// ephemeral range so that no bind to port 0 takes it before its user binds it.
int PickFreePort();

// Path of a binary built next to the tests (CMake passes the build dir).
std::string BuiltBinary(const std::string& name);

// Polls `predicate` every 20 ms until true or `timeout`; returns its last value.
bool WaitFor(const std::function<bool()>& predicate, absl::Duration timeout);

// Makes a fresh temp dir under $TMPDIR (or /tmp) and returns its path.
std::string MakeTempDir(const std::string& prefix);

// The whole content of the file at `path`; "" when it cannot be read.
std::string ReadFileContents(const std::string& path);

}  // namespace hsync::testing
