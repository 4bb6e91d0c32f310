// The admin/user endpoints' semantics (PANEL.md §1), over the current
// thread's database session: visibility by admin tree, the panel's two-step
// create, null-means-unchanged patches, absolute capped usage, renames.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/panelsim/api_error.h"
#include "tests/panelsim/proxy_cores.h"
#include "tests/panelsim/quick_apply.h"
#include "tests/panelsim/sim_clock.h"
#include "tests/panelsim/sim_counters.h"
#include "tests/panelsim/user_input.h"
#include "tests/panelsim/user_record.h"

namespace hsync::panelsim {

// The authenticated admin of a request.
struct Caller {
  AdminRecord admin;
  bool super_admin() const { return admin.mode == "super_admin"; }
};

// A 200 JSON body, or the error to answer.
struct ServiceResult {
  std::string body;
  std::optional<ApiError> error;
  int64_t listed_users = 0;  // List(): users in the body
  static ServiceResult Ok(std::string body) { return ServiceResult{std::move(body), std::nullopt}; }
  static ServiceResult Fail(ApiError error) { return ServiceResult{"", std::move(error)}; }
};

// Bytes the panel stores for a GiB value: min(gib * 2^30, 10^6 * 2^30), rounded
// half away from zero (as MariaDB rounds the literal). Error if below BIGINT range.
std::optional<int64_t> PanelStoredBytes(double gib);

// Ids of `root` and its sub-admins, transitively through parent_admin_id (depth 20).
std::vector<int64_t> RecursiveSubAdminIds(const std::vector<AdminRecord>& admins, int64_t root);

// The endpoints' side effects on the cores, as the panel's handlers make
// them (PANEL.md §1): POST adds the user to the drivers; PATCH removes it,
// updates the row, adds it back if is_active; DELETE removes it; each then
// calls quick_apply_users(). Errors answered before the write have none.
class UserService {
 public:
  UserService(SimClock& clock, SimCounters& counters, ProxyCores& cores,
              QuickApplyUsers& quick_apply)
      : clock_(clock), counters_(counters), cores_(cores), quick_apply_(quick_apply) {}

  ServiceResult List(const Caller& caller);
  // The per-user calls take the user row if the caller already read it
  // (`prefetched`, nullopt inside = no such user); null = look it up.
  ServiceResult Get(const Caller& caller, const std::string& uuid,
                    const std::optional<UserRecord>* prefetched = nullptr);
  ServiceResult Create(const Caller& caller, const UserInput& input);
  ServiceResult Patch(const Caller& caller, const std::string& uuid, const UserInput& input,
                      const std::optional<UserRecord>* prefetched = nullptr);
  ServiceResult Delete(const Caller& caller, const std::string& uuid,
                       const std::optional<UserRecord>* prefetched = nullptr);

 private:
  // `*prefetched`, or the user `uuid` read now.
  absl::StatusOr<std::optional<UserRecord>> Lookup(const std::string& uuid,
                                                   const std::optional<UserRecord>* prefetched);
  // 403 unless `caller` may see `user`; nullopt when it may.
  std::optional<ApiError> CheckPermission(const Caller& caller, const UserRecord& user);
  // Writes `input` over `user` as the panel's add_or_update does (only the
  // columns that change, in one UPDATE). `kind` picks the WireGuard key rule
  // (POST: all three or none; PATCH: each given key). Sets *usage_changed.
  std::optional<ApiError> Apply(const Caller& caller, UserRecord* user, const UserInput& input,
                                UserBodyKind kind, bool* usage_changed);

  SimClock& clock_;
  SimCounters& counters_;
  ProxyCores& cores_;
  QuickApplyUsers& quick_apply_;
};

}  // namespace hsync::panelsim
