// The earlier per-child Python tool's algorithm (PANEL.md §4), re-created as
// a test client for the side-by-side benchmark: it exists to show what
// hiddify-sync fixes, and does on purpose what the old tool did wrong.
// One client per child; every cycle:
//   1. block sync: GET the parent's user list; create users missing on the
//      child (every NOT NULL column given, as its fixed version did), set
//      `enable` from the parent, delete users the parent no longer has
//      (guard: skip when the list is empty or more than max(10, 25%) would go);
//   2. usage: for every local user with current_usage > 0: GET the parent
//      user, PATCH current_usage_GB = parent + local (exact bytes here, so
//      only the algorithm's own losses show); then, only when every send
//      succeeded, `UPDATE user SET current_usage = 0` on the child.
// Both read-modify-writes race: two children on the same parent user, and
// the SET 0 against the child panel's own traffic writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/mariadb.h"
#include "tests/support/http_client.h"

namespace hsync::e2e {

struct OldToolOptions {
  std::string parent_root_url;    // http://127.0.0.1:PORT
  std::string parent_proxy_path;  // the admin proxy path
  std::string parent_api_key;     // the old tool held the parent's super-admin key
  MariaDbOptions child_db;        // the child panel's database
  absl::Duration cycle = absl::Seconds(10);
};

struct OldToolStats {
  uint64_t cycles = 0;
  uint64_t failed_cycles = 0;    // a send failed: nothing was zeroed
  uint64_t users_sent = 0;
  uint64_t bytes_sent = 0;
  // When each finished cycle's usage step read the child (its bytes are on
  // the parent when the cycle ends): start of SendUsage, end of the cycle.
  std::vector<std::pair<absl::Time, absl::Time>> send_spans;
};

class OldToolClient {
 public:
  explicit OldToolClient(OldToolOptions options);
  ~OldToolClient();  // Stop()s

  // One full cycle (block sync, then usage), on the caller's thread.
  absl::Status RunCycle();
  // Runs a cycle every `cycle` on its own thread, the first after `phase`.
  void Start(absl::Duration phase);
  void Stop();
  OldToolStats stats();

 private:
  absl::Status SyncUsers();
  absl::Status SendUsage();
  absl::Status EnsureDb();
  absl::StatusOr<hsync::testing::HttpResponse> Call(const std::string& method,
                                                    const std::string& path,
                                                    const std::string& body = "");

  OldToolOptions options_;
  hsync::testing::TestHttpClient http_;
  std::unique_ptr<MariaDbConnection> db_;
  std::mutex stats_mu_;
  OldToolStats stats_;
  std::unique_ptr<absl::Notification> stop_;
  std::thread thread_;
};

}  // namespace hsync::e2e
