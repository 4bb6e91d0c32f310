// A parent's user (hiddify_sync.v1.User) turned into the values of the child's
// `user` columns that follow the parent, as the text MariaDB returns for them,
// so that "does the local row differ?" is a plain comparison. Validates that
// the local table can hold every value.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::reporter {

// The columns the roster writes on existing users, in this order. `enable`
// follows the parent's is_active.
inline constexpr std::array<const char*, 15> kSyncedColumns = {
    "name",        "usage_limit", "package_days",        "mode",
    "comment",     "start_date",  "last_reset_time",     "telegram_id",
    "lang",        "enable",      "ed25519_private_key", "ed25519_public_key",
    "wg_pk",       "wg_pub",      "wg_psk"};
inline constexpr size_t kLastResetColumn = 6;

struct UserRow {
  std::string uuid;  // lower-case canonical
  // NULL = nullopt. Empty strings of nullable text columns are NULL.
  std::array<std::optional<std::string>, kSyncedColumns.size()> values;
};

// InvalidArgument naming the field when the value cannot be stored locally.
absl::StatusOr<UserRow> UserRowFromRoster(const hiddify_sync::v1::User& user);

// True for a lower-case canonical uuid (8-4-4-4-12 hex digits).
bool IsCanonicalUuid(std::string_view text);

}  // namespace hsync::reporter
