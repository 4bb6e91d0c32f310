// Where the roster poller reads the parent's users from: the panel's API list
// (write = "api") or the panel's database (write = "database"). Each source is
// used by the poller thread only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "hub/parent/parent_client.h"

namespace hsync::hub {

class RosterSource {
 public:
  virtual ~RosterSource() = default;
  // Streams the parent's complete user list: each readable user goes to
  // `on_user` as it is read; returns the elements left out (unreadable), or
  // nullopt when the source knows that nothing changed since its last
  // successful read (then no user was given; the roster stays as it is,
  // marked fresh). An error means nothing may be published from this read
  // (the users given so far must be discarded).
  virtual absl::StatusOr<std::optional<std::vector<SkippedPanelUser>>> Read(
      const std::function<void(hiddify_sync::v1::User)>& on_user) = 0;
};

// The API's list route (GET /api/v2/admin/user/), every time in full.
class ApiRosterSource : public RosterSource {
 public:
  explicit ApiRosterSource(std::unique_ptr<ParentClient> parent) : parent_(std::move(parent)) {}
  absl::StatusOr<std::optional<std::vector<SkippedPanelUser>>> Read(
      const std::function<void(hiddify_sync::v1::User)>& on_user) override;

 private:
  std::unique_ptr<ParentClient> parent_;
};

}  // namespace hsync::hub
