// The panel's JSON user object (PANEL.md §1) <-> hiddify_sync.v1.User, and
// the text of PATCH bodies. Strict: a body that is not what the panel sends
// is an error (DataLoss) with a short description, never a guess.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/parent/parent_client.h"

namespace hsync::hub {

// Parses a response body holding one user object. Every one of the 21 keys
// must be present with its type: strings, bools, integers as the panel prints
// them; the GiB numbers become exact bytes (hsync::PanelGiBToBytes; negative,
// NaN or infinite -> error); dates and times are checked against the panel's
// formats. null is accepted where the panel's database allows NULL
// (start_date, last_reset_time, telegram_id -> unset; comment, mode, lang
// and the key fields -> ""). added_by_uuid is read but never kept: an admin's
// uuid is its API key. Keys a newer panel may add are ignored. Errors are DataLoss and name the field (and the uuid when known).
absl::StatusOr<hiddify_sync::v1::User> ParsePanelUser(std::string_view body);

// Parses a response body holding a JSON array of user objects (list route).
// An element that ParsePanelUser would refuse is left out and described in
// `skipped` (its uuid when readable, the failing field, the reason); the rest
// are returned. A body that is not JSON or not an array -> DataLoss.
absl::StatusOr<PanelUserList> ParsePanelUserList(std::string_view body);

// One element of the list's array, as ParsePanelUserList judges it: the user,
// or (user unset) why it was left out. Not JSON at all -> DataLoss.
struct ListElement {
  std::optional<hiddify_sync::v1::User> user;
  SkippedPanelUser skipped;
};
absl::StatusOr<ListElement> ParsePanelUserListElement(std::string_view element, size_t index);

// The error for a list body that does not start as a JSON array (`head`: its
// first bytes): "not JSON" or "expected a JSON array, got <type>".
absl::Status ParsePanelUserListHead(std::string_view head);

// The JSON text of a PATCH body holding exactly the set fields of `patch`:
// current_usage_GB as hsync::BytesToPanelGiB prints it (exact round trip),
// last_online, package_days, start_date. Never a uuid. InvalidArgument for an
// empty patch, bytes above the panel's cap, a malformed date/time, or a
// start_date without package_days (the panel would silently ignore it).
absl::StatusOr<std::string> BuildPatchBody(const UserPatch& patch);

// At most `max` bytes of `body` for an error message: control characters
// replaced, and the total size noted when cut.
std::string ShortBodyForMessage(std::string_view body, size_t max = 160);

}  // namespace hsync::hub
