#include "tests/panelsim/user_service.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/panel_time.h"
#include "common/units.h"
#include "tests/panelsim/db_session.h"
#include "tests/panelsim/key_generator.h"
#include "tests/panelsim/user_activity.h"
#include "tests/panelsim/user_json.h"
#include "tests/panelsim/user_store.h"

namespace hsync::panelsim {
namespace {

ApiError DatabaseFailure(const absl::Status& status) {
  return ApiError::Exception(DatabaseErrorText(status));
}

ApiError NoPermission() {
  return ApiError::Abort(403, "You don't have permission to access this user");
}

std::optional<std::string> NullIfEmpty(const std::optional<std::string>& s) {
  if (!s.has_value() || s->empty()) return std::nullopt;
  return s;
}

bool AllNonEmpty(std::initializer_list<const std::optional<std::string>*> values) {
  for (const auto* v : values) {
    if (!NullIfEmpty(*v).has_value()) return false;
  }
  return true;
}

}  // namespace

std::optional<int64_t> PanelStoredBytes(double gib) {
  double bytes = gib * static_cast<double>(kBytesPerGiB);
  bytes = std::min(bytes, static_cast<double>(kPanelMaxBytes));
  bytes = std::round(bytes);
  if (!(bytes >= -9223372036854775808.0)) return std::nullopt;
  return static_cast<int64_t>(bytes);
}

std::vector<int64_t> RecursiveSubAdminIds(const std::vector<AdminRecord>& admins, int64_t root) {
  std::vector<int64_t> out;
  std::set<int64_t> seen;
  std::vector<std::pair<int64_t, int>> stack = {{root, 20}};
  while (!stack.empty()) {
    const auto [id, depth] = stack.back();
    stack.pop_back();
    if (!seen.insert(id).second) continue;
    out.push_back(id);
    if (depth <= 0) continue;
    for (const AdminRecord& admin : admins) {
      if (admin.parent_admin_id == id && admin.id != id) stack.push_back({admin.id, depth - 1});
    }
  }
  return out;
}

std::optional<ApiError> UserService::CheckPermission(const Caller& caller,
                                                     const UserRecord& user) {
  if (caller.super_admin()) return std::nullopt;
  if (!user.added_by.has_value()) return NoPermission();
  if (*user.added_by == caller.admin.id) return std::nullopt;
  UserStore store(DbSession::ForThisThread());
  absl::StatusOr<std::vector<AdminRecord>> admins = store.AllAdmins();
  if (!admins.ok()) return DatabaseFailure(admins.status());
  for (int64_t id : RecursiveSubAdminIds(*admins, caller.admin.id)) {
    if (id == *user.added_by) return std::nullopt;
  }
  return NoPermission();
}

ServiceResult UserService::List(const Caller& caller) {
  UserStore store(DbSession::ForThisThread());
  std::optional<std::vector<int64_t>> owners;
  if (!caller.super_admin()) {
    absl::StatusOr<std::vector<AdminRecord>> admins = store.AllAdmins();
    if (!admins.ok()) return ServiceResult::Fail(DatabaseFailure(admins.status()));
    owners = RecursiveSubAdminIds(*admins, caller.admin.id);
  }
  const absl::CivilDay today = clock_.Today();
  std::string body = "[";
  size_t count = 0;
  bool unreadable = false;
  absl::Status status = store.StreamUsers(owners, [&](const RowCells& row) {
    if (count == 0) body.reserve(1024 * 1024);
    if (count > 0) body.push_back(',');
    if (!AppendUserJsonFromRow(&body, row, today)) unreadable = true;
    ++count;
  });
  if (!status.ok()) return ServiceResult::Fail(DatabaseFailure(status));
  if (unreadable) return ServiceResult::Fail(ApiError::Exception("unreadable row in the user table"));
  if (count == 0) return ServiceResult::Fail(ApiError::Abort(404, "You have no user"));
  body.push_back(']');
  ServiceResult result = ServiceResult::Ok(std::move(body));
  result.listed_users = static_cast<int64_t>(count);
  return result;
}

absl::StatusOr<std::optional<UserRecord>> UserService::Lookup(
    const std::string& uuid, const std::optional<UserRecord>* prefetched) {
  if (prefetched != nullptr) return *prefetched;
  UserStore store(DbSession::ForThisThread());
  return store.FindUserByUuid(uuid);
}

ServiceResult UserService::Get(const Caller& caller, const std::string& uuid,
                               const std::optional<UserRecord>* prefetched) {
  absl::StatusOr<std::optional<UserRecord>> user = Lookup(uuid, prefetched);
  if (!user.ok()) return ServiceResult::Fail(DatabaseFailure(user.status()));
  if (!user->has_value()) return ServiceResult::Fail(ApiError::Abort(404, "User not found"));
  if (auto denied = CheckPermission(caller, **user)) return ServiceResult::Fail(*denied);
  return ServiceResult::Ok(UserJson(**user, clock_.Today()));
}

ServiceResult UserService::Delete(const Caller& caller, const std::string& uuid,
                                  const std::optional<UserRecord>* prefetched) {
  UserStore store(DbSession::ForThisThread());
  absl::StatusOr<std::optional<UserRecord>> user = Lookup(uuid, prefetched);
  if (!user.ok()) return ServiceResult::Fail(DatabaseFailure(user.status()));
  if (!user->has_value()) return ServiceResult::Fail(ApiError::Abort(404, "user not found"));
  if (auto denied = CheckPermission(caller, **user)) return ServiceResult::Fail(*denied);
  absl::StatusOr<bool> deleted = store.DeleteUser((*user)->id);
  if (!deleted.ok()) return ServiceResult::Fail(DatabaseFailure(deleted.status()));
  cores_.RemoveClient((*user)->uuid);
  quick_apply_.Run();
  return ServiceResult::Ok(R"({"msg":"ok","status":200})");
}

ServiceResult UserService::Patch(const Caller& caller, const std::string& uuid,
                                 const UserInput& input,
                                 const std::optional<UserRecord>* prefetched) {
  absl::StatusOr<std::optional<UserRecord>> found = Lookup(uuid, prefetched);
  if (!found.ok()) return ServiceResult::Fail(DatabaseFailure(found.status()));
  if (!found->has_value()) return ServiceResult::Fail(ApiError::Abort(404, "user not found"));
  if (auto denied = CheckPermission(caller, **found)) return ServiceResult::Fail(*denied);
  UserRecord user = **found;
  cores_.RemoveClient(user.uuid);
  bool usage_changed = false;
  if (auto error = Apply(caller, &user, input, UserBodyKind::kPatch, &usage_changed)) {
    return ServiceResult::Fail(*error);
  }
  if (usage_changed) counters_.CountUsagePatch();
  if (IsActive(user, clock_.Today())) cores_.AddClient(user.uuid);
  quick_apply_.Run();
  return ServiceResult::Ok(UserJson(user, clock_.Today()));
}

ServiceResult UserService::Create(const Caller& caller, const UserInput& input) {
  UserStore store(DbSession::ForThisThread());
  if (input.uuid.has_value()) {
    absl::StatusOr<std::optional<UserRecord>> existing = store.FindUserByUuid(*input.uuid);
    if (!existing.ok()) return ServiceResult::Fail(DatabaseFailure(existing.status()));
    if (existing->has_value()) return ServiceResult::Fail(ApiError::Abort(400, "The user exists"));
  }
  UserInput effective = input;
  if (!effective.added_by_uuid.has_value()) effective.added_by_uuid = caller.admin.uuid;

  // Step 1 (committed on its own, as the panel does): a row named "unknown"
  // with the model's defaults and freshly generated keys.
  const absl::CivilDay today = clock_.Today();
  const Ed25519Keys ed = GenerateEd25519Keys();
  const WireGuardKeys wg = GenerateWireGuardKeys();
  const std::string uuid = input.uuid.value_or(RandomUuid4());
  const std::vector<ColumnValue> columns = {
      {"uuid", uuid},
      {"name", std::string("unknown")},
      {"comment", std::string("")},  // the model's default (the column's SQL default is NULL)
      {"last_online", std::string(kNeverOnline)},
      {"usage_limit", static_cast<int64_t>(1000 * kBytesPerGiB)},
      {"package_days", int64_t{90}},
      {"mode", std::string("no_reset")},
      {"monthly", int64_t{0}},
      {"current_usage", int64_t{0}},
      {"last_reset_time", FormatPanelDate(today)},
      {"added_by", caller.admin.id},
      {"max_ips", int64_t{100}},
      {"enable", int64_t{1}},
      {"username", absl::StrCat("user", RandomAlnum(8))},
      {"password", RandomAlnum(16)},
      {"ed25519_private_key", ed.private_openssh},
      {"ed25519_public_key", ed.public_openssh},
      {"wg_pk", wg.private_key},
      {"wg_pub", wg.public_key},
      {"wg_psk", wg.preshared_key},
  };
  absl::StatusOr<int64_t> id = store.InsertUser(columns);
  if (!id.ok()) return ServiceResult::Fail(DatabaseFailure(id.status()));
  absl::StatusOr<std::optional<UserRecord>> created = store.FindUserById(*id);
  if (!created.ok()) return ServiceResult::Fail(DatabaseFailure(created.status()));
  if (!created->has_value()) {
    return ServiceResult::Fail(ApiError::Abort(502, "Unknown issue: User is not added"));
  }
  // Step 2: the body's fields over it. If this fails the "unknown" row stays.
  UserRecord user = **created;
  bool usage_changed = false;
  if (auto error = Apply(caller, &user, effective, UserBodyKind::kCreate, &usage_changed)) {
    return ServiceResult::Fail(*error);
  }
  cores_.AddClient(user.uuid);  // the panel adds a created user whatever its is_active
  quick_apply_.Run();
  return ServiceResult::Ok(UserJson(user, clock_.Today()));
}

std::optional<ApiError> UserService::Apply(const Caller& caller, UserRecord* user,
                                           const UserInput& in, UserBodyKind kind,
                                           bool* usage_changed) {
  UserStore store(DbSession::ForThisThread());
  std::vector<ColumnValue> sets;
  UserRecord after = *user;
  bool reread = false;

  if (in.uuid.has_value() && *in.uuid != after.uuid) {
    after.uuid = *in.uuid;
    sets.push_back({"uuid", *in.uuid});
  }
  if (in.name.has_value() && *in.name != after.name) {
    after.name = *in.name;
    sets.push_back({"name", *in.name});
  }
  if (in.comment.has_value() && in.comment != after.comment) {
    after.comment = in.comment;
    sets.push_back({"comment", *in.comment});
  }
  if (in.telegram_id.has_value() && in.telegram_id != after.telegram_id) {
    after.telegram_id = in.telegram_id;
    sets.push_back({"telegram_id", *in.telegram_id});
  }
  if (in.lang.has_value() && in.lang != after.lang) {
    after.lang = in.lang;
    sets.push_back({"lang", *in.lang});
  }
  if (in.added_by_uuid.has_value()) {
    absl::StatusOr<std::optional<AdminRecord>> admin = store.FindAdminByUuid(*in.added_by_uuid);
    if (!admin.ok()) return DatabaseFailure(admin.status());
    if (!admin->has_value()) {
      // The panel silently creates an agent admin for an unknown owner uuid.
      absl::StatusOr<AdminRecord> created = store.CreateAgentAdmin(*in.added_by_uuid,
                                                                   caller.admin.id);
      if (!created.ok()) return DatabaseFailure(created.status());
      *admin = *created;
    }
    if (after.added_by != (*admin)->id) {
      after.added_by = (*admin)->id;
      after.added_by_uuid = (*admin)->uuid;
      sets.push_back({"added_by", (*admin)->id});
    }
  } else if (!after.added_by.has_value()) {
    after.added_by = 1;
    sets.push_back({"added_by", int64_t{1}});
    reread = true;
  }
  if (in.package_days.has_value()) {
    if (*in.package_days != after.package_days) {
      after.package_days = *in.package_days;
      sets.push_back({"package_days", *in.package_days});
    }
    if (in.start_date.has_value()) {
      if (after.start_date != in.start_date) {
        after.start_date = in.start_date;
        sets.push_back({"start_date", FormatPanelDate(*in.start_date)});
      }
    } else if (in.start_date_given && after.start_date.has_value()) {
      after.start_date.reset();
      sets.push_back({"start_date", std::monostate{}});
    }
  }
  const auto set_bytes = [&](const std::optional<double>& gib, const char* column,
                             int64_t* field) -> std::optional<ApiError> {
    if (!gib.has_value()) return std::nullopt;
    std::optional<int64_t> bytes = PanelStoredBytes(*gib);
    if (!bytes.has_value()) {
      return ApiError::Exception(absl::StrCat(
          "(MySQLdb.OperationalError) (1264, \"Out of range value for column '", column,
          "' at row 1\")"));
    }
    if (*bytes != *field) {
      *field = *bytes;
      sets.push_back({column, *bytes});
    }
    return std::nullopt;
  };
  const int64_t usage_before = after.current_usage;
  if (auto e = set_bytes(in.current_usage_gb, "current_usage", &after.current_usage)) return e;
  if (auto e = set_bytes(in.usage_limit_gb, "usage_limit", &after.usage_limit)) return e;
  if (in.enable.has_value() && *in.enable != after.enable) {
    after.enable = *in.enable;
    sets.push_back({"enable", int64_t{*in.enable ? 1 : 0}});
  }
  if (AllNonEmpty({&in.ed25519_private_key, &in.ed25519_public_key})) {
    if (after.ed25519_private_key != in.ed25519_private_key) {
      after.ed25519_private_key = in.ed25519_private_key;
      sets.push_back({"ed25519_private_key", *in.ed25519_private_key});
    }
    if (after.ed25519_public_key != in.ed25519_public_key) {
      after.ed25519_public_key = in.ed25519_public_key;
      sets.push_back({"ed25519_public_key", *in.ed25519_public_key});
    }
  }
  // POST (as observed): the body's WireGuard keys only as a complete set.
  // PATCH (add_or_update: `if data.get('wg_pk') is not None`): each key given,
  // an empty string included.
  const bool wg_from_body = kind == UserBodyKind::kPatch ||
                            AllNonEmpty({&in.wg_pk, &in.wg_pub, &in.wg_psk});
  if (wg_from_body) {
    const std::pair<const std::optional<std::string>*, std::optional<std::string>*> keys[] = {
        {&in.wg_pk, &after.wg_pk}, {&in.wg_pub, &after.wg_pub}, {&in.wg_psk, &after.wg_psk}};
    const char* names[] = {"wg_pk", "wg_pub", "wg_psk"};
    for (int i = 0; i < 3; ++i) {
      if (keys[i].first->has_value() && *keys[i].second != *keys[i].first) {
        *keys[i].second = *keys[i].first;
        sets.push_back({names[i], **keys[i].first});
      }
    }
  }
  if (in.mode.has_value() || !after.mode.has_value()) {
    const std::string mode = in.mode.value_or("no_reset");
    if (after.mode != mode) {
      after.mode = mode;
      sets.push_back({"mode", mode});
    }
  }
  if (in.last_online.has_value() && !in.last_online_valid) {
    // What the panel's database answers when handed such a value.
    return ApiError::Exception(absl::StrCat(
        "(MySQLdb.OperationalError) (1292, \"Incorrect datetime value: '", *in.last_online,
        "' for column `", DbSession::DatabaseName(), "`.`user`.`last_online` at row 1\")"));
  }
  if (in.last_online.has_value() && *in.last_online != after.last_online) {
    after.last_online = *in.last_online;
    sets.push_back({"last_online", *in.last_online});
  }

  absl::Status status = store.UpdateUser(after.id, sets);
  if (!status.ok()) return DatabaseFailure(status);
  *usage_changed = after.current_usage != usage_before;
  if (reread) {
    absl::StatusOr<std::optional<UserRecord>> fresh = store.FindUserById(after.id);
    if (!fresh.ok()) return DatabaseFailure(fresh.status());
    if (fresh->has_value()) after = **fresh;
  }
  *user = std::move(after);
  return std::nullopt;
}

}  // namespace hsync::panelsim
