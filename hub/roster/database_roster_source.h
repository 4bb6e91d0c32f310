// The roster read from the parent panel's own database (write = "database"):
// the `user` rows as the API would list them (hub/parent/panel_user_row.h:
// same fields, never the owning admin, is_active by PANEL.md §3 in the
// parent's local date; soft-deleted rows of newer panels left out). A cheap
// probe first (row count and two checksums over every listed column, computed
// in MariaDB, plus today's date): when it equals the last read's, nothing is
// transferred. A full read still happens at least every `full_read_every`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "hub/parent/parent_database.h"
#include "hub/roster/roster_source.h"

namespace hsync::hub {

class DatabaseRosterSource : public RosterSource {
 public:
  DatabaseRosterSource(std::unique_ptr<ParentDatabase> db, std::function<absl::CivilDay()> today,
                       absl::Duration full_read_every = absl::Minutes(10));
  absl::StatusOr<std::optional<std::vector<SkippedPanelUser>>> Read(
      const std::function<void(hiddify_sync::v1::User)>& on_user) override;

  // Reads since construction that transferred the whole list / only probed.
  uint64_t full_reads() const { return full_reads_; }
  uint64_t probes_unchanged() const { return probes_unchanged_; }

 private:
  absl::StatusOr<std::string> Probe(MariaDbConnection& conn);
  absl::StatusOr<std::vector<SkippedPanelUser>> ReadAll(
      MariaDbConnection& conn, absl::CivilDay today,
      const std::function<void(hiddify_sync::v1::User)>& on_user);
  std::string ListedRowsFilter() const;

  std::unique_ptr<ParentDatabase> db_;
  std::function<absl::CivilDay()> today_;
  const absl::Duration full_read_every_;
  std::string last_probe_;  // "" = no successful read yet
  absl::Time last_full_read_ = absl::InfinitePast();
  uint64_t full_reads_ = 0;
  uint64_t probes_unchanged_ = 0;
};

}  // namespace hsync::hub
