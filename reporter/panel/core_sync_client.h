// What the core syncer calls to make one user's proxy cores follow its row.
// Two implementations: ChildPanelClient (the child panel's own REST API) and
// NoCoreSyncClient ([panel] core_sync = false: nothing to call, every change
// counts as synced at once so that apply runs still follow).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace hsync::reporter {

class CoreSyncClient {
 public:
  virtual ~CoreSyncClient() = default;
  // Makes the cores follow the user's row (add when active, else remove).
  // NotFound when the panel has no such user; other errors are retried.
  virtual absl::Status SyncUser(const std::string& uuid) = 0;
  // Removes the user from every core and deletes the row. NotFound when the
  // panel has no such user (already gone).
  virtual absl::Status DeleteUser(const std::string& uuid) = 0;
};

class NoCoreSyncClient : public CoreSyncClient {
 public:
  absl::Status SyncUser(const std::string&) override { return absl::OkStatus(); }
  absl::Status DeleteUser(const std::string&) override { return absl::OkStatus(); }
};

}  // namespace hsync::reporter
