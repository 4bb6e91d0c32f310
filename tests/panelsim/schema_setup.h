// Preparing a panelsim database: the tables of PANEL.md §2, the owner admin,
// demo users with realistic quotas.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/sim_clock.h"

namespace hsync::panelsim {

// CREATE TABLE IF NOT EXISTS admin_user, user (exactly the panel's columns).
absl::Status CreateHiddifySchema(DbSession& db);

// Inserts admin_user id=1 (super_admin) with `owner_uuid` if the table is empty.
absl::Status EnsureOwnerAdmin(DbSession& db, const std::string& owner_uuid);

// Inserts `count` demo users owned by admin 1 if the user table is empty:
// random names, quotas of 10-500 GiB, 30-365 days, a few resetting modes,
// some started with usage, some never online.
absl::Status InsertDemoUsers(DbSession& db, int count, const SimClock& clock, uint64_t seed);

}  // namespace hsync::panelsim
