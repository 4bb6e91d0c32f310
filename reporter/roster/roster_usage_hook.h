// A seam of the roster applier: something that must happen to the child's
// users inside the SAME transaction as a roster update, after the applier
// wrote its rows and before it commits (e.g. UsageFollower moving the
// child's usage counter to the parent's). An error fails the whole apply
// (nothing of the update is committed).
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "common/mariadb.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "reporter/roster/roster_savepoint.h"

namespace hsync::reporter {

class RosterUsageHook {
 public:
  virtual ~RosterUsageHook() = default;

  // Called inside the applier's open transaction. `skipped` are the users of
  // `update` the applier did not write (they are left alone).
  virtual absl::Status AfterRosterWrites(MariaDbConnection& conn,
                                         const hiddify_sync::v1::RosterUpdate& update,
                                         const std::vector<SkippedUser>& skipped) = 0;
};

}  // namespace hsync::reporter
