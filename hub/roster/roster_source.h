// Where the roster poller reads the parent's users from: the panel's API list
// (write = "api") or the panel's database (write = "database"). Each source is
// used by the poller thread only.
#pragma once

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "hub/parent/parent_client.h"

namespace hsync::hub {

class RosterSource {
 public:
  virtual ~RosterSource() = default;
  // The parent's complete user list (unreadable users in `skipped`), or
  // nullopt when the source knows that nothing changed since its last
  // successful read (the roster then stays as it is, marked fresh). An error
  // means nothing may be published from this read.
  virtual absl::StatusOr<std::optional<PanelUserList>> Read() = 0;
};

// The API's list route (GET /api/v2/admin/user/), every time in full.
class ApiRosterSource : public RosterSource {
 public:
  explicit ApiRosterSource(std::unique_ptr<ParentClient> parent) : parent_(std::move(parent)) {}
  absl::StatusOr<std::optional<PanelUserList>> Read() override;

 private:
  std::unique_ptr<ParentClient> parent_;
};

}  // namespace hsync::hub
