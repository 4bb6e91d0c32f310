#include "hub/roster/roster_source.h"

namespace hsync::hub {

absl::StatusOr<std::optional<std::vector<SkippedPanelUser>>> ApiRosterSource::Read(
    const std::function<void(hiddify_sync::v1::User)>& on_user) {
  absl::StatusOr<std::vector<SkippedPanelUser>> skipped = parent_->ListUsers(on_user);
  if (!skipped.ok()) return skipped.status();
  return std::optional<std::vector<SkippedPanelUser>>(*std::move(skipped));
}

}  // namespace hsync::hub
