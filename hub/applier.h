// The only writer of usage to the parent: one thread, applying pending
// totals per user (ARCHITECTURE.md "Exactly once" steps 4-5).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/journal.h"
#include "hub/parent_client.h"

namespace hsync::hub {

struct ApplierOptions {
  absl::Duration cycle_interval = absl::Seconds(1);    // how often pending totals are checked
  absl::Duration max_apply_delay = absl::Seconds(60);  // a user's bytes wait at most this long
  uint64_t urgent_margin_bytes = 100ull << 20;         // within this of the quota = urgent
  absl::Duration backoff_initial = absl::Seconds(1);   // per-user and parent-wide backoff
  absl::Duration backoff_max = absl::Minutes(5);
};

struct FailingUserInfo {
  std::string uuid;
  uint64_t pending_bytes = 0;
  uint32_t consecutive_failures = 0;
  std::string last_error;
  absl::Time next_attempt_at;
};

struct ApplierStats {
  absl::Time last_apply_at = absl::InfinitePast();  // last cycle that PATCHed successfully
  uint64_t patches_total = 0;
  uint64_t patch_failures = 0;
  uint64_t gets_total = 0;
  bool parent_reachable = false;
  std::string last_parent_error;
  absl::Time last_parent_error_at = absl::InfinitePast();
  std::vector<FailingUserInfo> failing_users;
};

// What the applier may learn from or tell the roster.
struct ApplierHooks {
  // The roster's view of a user (quota and usage, for urgency); nullopt if unknown.
  std::function<std::optional<hiddify_sync::v1::User>(const std::string& uuid)> lookup_user;
  // Called with every user object the parent answered a PATCH with.
  std::function<void(const hiddify_sync::v1::User&)> on_user_patched;
};

class Applier {
 public:
  Applier(Journal* journal, std::unique_ptr<ParentClient> parent, ApplierHooks hooks,
          ApplierOptions options);
  ~Applier();  // Stop()s

  // Resolves open intents (reads each user back), then starts the thread.
  absl::Status Start();
  // Finishes the PATCH in flight (and its journal update), then returns.
  void Stop();
  // Runs one apply cycle on the caller's thread, as if the clock read `now`
  // (used when the thread is not started, e.g. a final flush).
  absl::Status RunOneCycle(absl::Time now);
  ApplierStats Stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hsync::hub
