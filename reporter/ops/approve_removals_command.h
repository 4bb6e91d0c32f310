// `hiddify-sync-reporter approve-removals [--config PATH] [--yes]`: shows the
// removals the mass-removal guard holds back (uuid and name of each user, the
// count, the remove_policy) and, once confirmed, applies exactly those in one
// transaction the way the roster applier removes (RemoveLocalUsers: disable or
// delete per roster.remove_policy), clears them from the held set, and runs
// the panel's apply path ([apply]) once. Works whether the daemon runs or not:
// it writes only to MariaDB, in the lock order the applier uses, and what it
// removed is no longer held, so the daemon does not bring it back.
//
// Confirmation: --yes; or, when stdin is a terminal, an answer "y". Without
// either, it prints the list and changes nothing.
// Exit code: 0 applied (or nothing held), 1 not confirmed or some users
// refused by the database (they stay held), 2 bad config or MariaDB error.
#pragma once

#include <istream>
#include <ostream>
#include <string>

namespace hsync::reporter {

struct ApproveRemovalsRequest {
  std::string config_path;
  bool yes = false;          // --yes
  bool interactive = false;  // stdin is a terminal: ask
};

int RunApproveRemovalsCommand(const ApproveRemovalsRequest& request, std::istream& in,
                              std::ostream& out, std::ostream& err);

}  // namespace hsync::reporter
