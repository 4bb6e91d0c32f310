#include "hub/roster/database_roster_source.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "common/status_macros.h"
#include "hub/parent/panel_user_row.h"

namespace hsync::hub {

DatabaseRosterSource::DatabaseRosterSource(std::unique_ptr<ParentDatabase> db,
                                           std::function<absl::CivilDay()> today,
                                           absl::Duration full_read_every)
    : db_(std::move(db)), today_(std::move(today)), full_read_every_(full_read_every) {}

std::string DatabaseRosterSource::ListedRowsFilter() const {
  return db_->has_deleted_column() ? " WHERE NOT COALESCE(deleted, 0)" : "";
}

absl::StatusOr<std::string> DatabaseRosterSource::Probe(MariaDbConnection& conn) {
  // JSON_ARRAY tells NULL from "" (CONCAT_WS would not).
  const std::string row_hash = absl::StrCat("CRC32(JSON_ARRAY(", PanelUserColumns(), "))");
  ASSIGN_OR_RETURN(ResultSet r,
                   conn.Query(absl::StrCat("SELECT COUNT(*), COALESCE(SUM(", row_hash,
                                           "), 0), COALESCE(BIT_XOR(", row_hash, "), 0) FROM `user`",
                                           ListedRowsFilter())));
  if (r.rows.size() != 1 || r.rows[0].size() != 3) {
    return absl::DataLossError("parent database: the change probe answered no row");
  }
  std::string probe;
  for (const auto& cell : r.rows[0]) absl::StrAppend(&probe, cell.value_or("null"), "/");
  return probe;
}

absl::StatusOr<std::vector<SkippedPanelUser>> DatabaseRosterSource::ReadAll(
    MariaDbConnection& conn, absl::CivilDay today,
    const std::function<void(hiddify_sync::v1::User)>& on_user) {
  ASSIGN_OR_RETURN(ResultSet rows, conn.Query(absl::StrCat("SELECT ", PanelUserColumns(),
                                                           " FROM `user`", ListedRowsFilter())));
  std::vector<SkippedPanelUser> skipped;
  for (const auto& row : rows.rows) {
    std::string field;
    absl::StatusOr<hiddify_sync::v1::User> user =
        PanelUserFromRow(row, today, db_->default_lang(), &field);
    if (user.ok()) {
      on_user(*std::move(user));
    } else {
      skipped.push_back({row.empty() ? "" : row[0].value_or(""), field,
                              std::string(user.status().message())});
    }
  }
  return skipped;
}

absl::StatusOr<std::optional<std::vector<SkippedPanelUser>>> DatabaseRosterSource::Read(
    const std::function<void(hiddify_sync::v1::User)>& on_user) {
  absl::StatusOr<MariaDbConnection*> conn = db_->Get();
  if (!conn.ok()) return conn.status();
  const absl::CivilDay today = today_();
  // is_active depends on the date: a new day is a change even without writes.
  absl::StatusOr<std::string> probe = Probe(**conn);
  if (!probe.ok()) {
    db_->Check(probe.status());
    return probe.status();
  }
  const std::string stamp = absl::StrCat(*probe, FormatPanelDate(today));
  const absl::Time now = absl::Now();
  if (!last_probe_.empty() && stamp == last_probe_ && now - last_full_read_ < full_read_every_) {
    ++probes_unchanged_;
    return std::optional<std::vector<SkippedPanelUser>>();
  }
  absl::StatusOr<std::vector<SkippedPanelUser>> list = ReadAll(**conn, today, on_user);
  if (!list.ok()) {
    db_->Check(list.status());
    return list.status();
  }
  // The probe was taken before the read: a change in between shows in the
  // next probe, never hidden.
  last_probe_ = stamp;
  last_full_read_ = now;
  ++full_reads_;
  return std::optional<std::vector<SkippedPanelUser>>(*std::move(list));
}

}  // namespace hsync::hub
