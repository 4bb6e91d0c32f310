// Preparing a panelsim database: the tables of PANEL.md §2, the owner admin,
// demo users with realistic quotas.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/panel_generation.h"
#include "tests/panelsim/sim_clock.h"

namespace hsync::panelsim {

// CREATE TABLE IF NOT EXISTS admin_user, user (exactly the panel's columns), str_config.
absl::Status CreateHiddifySchema(DbSession& db);

// CREATE TABLE IF NOT EXISTS str_config (the panel's settings: child_id, key, value).
absl::Status CreateStrConfigTable(DbSession& db);

// The stored procedure add_usage_json as migration _v103 creates it (12.x),
// or none at all (10.80: dropped if present).
absl::Status SetUpUsageProcedure(DbSession& db, PanelGeneration generation);

// str_config rows the panel keeps (child_id 0): core_type, proxy_path_admin.
absl::Status WriteStrConfig(DbSession& db, const std::string& key, const std::string& value);

// Inserts admin_user id=1 (super_admin) with `owner_uuid` if the table is empty.
absl::Status EnsureOwnerAdmin(DbSession& db, const std::string& owner_uuid);

// Inserts `count` demo users owned by admin 1 if the user table is empty:
// random names, quotas of 10-500 GiB, 30-365 days, a few resetting modes,
// some started with usage, some never online.
absl::Status InsertDemoUsers(DbSession& db, int count, const SimClock& clock, uint64_t seed);

}  // namespace hsync::panelsim
