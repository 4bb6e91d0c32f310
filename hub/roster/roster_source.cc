#include "hub/roster/roster_source.h"

namespace hsync::hub {

absl::StatusOr<std::optional<PanelUserList>> ApiRosterSource::Read() {
  absl::StatusOr<PanelUserList> list = parent_->ListUsers();
  if (!list.ok()) return list.status();
  return std::optional<PanelUserList>(*std::move(list));
}

}  // namespace hsync::hub
