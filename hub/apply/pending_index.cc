#include "hub/apply/pending_index.h"

#include <string_view>
#include <unordered_set>

#include "common/status_macros.h"

namespace hsync::hub {
namespace {

bool SameRow(const PendingUser& a, const PendingUser& b) {
  return a.bytes == b.bytes && a.last_online == b.last_online &&
         a.first_pending_at == b.first_pending_at;
}

}  // namespace

PendingIndex::PendingIndex(absl::Duration full_read_interval)
    : full_read_interval_(full_read_interval) {}

absl::StatusOr<PendingIndexUpdate> PendingIndex::Refresh(Journal& journal, absl::Time now) {
  if (full_read_due_ || now - last_full_read_ >= full_read_interval_) {
    // Taken first: a change noted after this is read again next time.
    (void)journal.TakeChangedPendingUsers();
    full_read_due_ = true;  // until the read succeeded
    ASSIGN_OR_RETURN(std::vector<PendingUser> all, journal.PendingUsers());
    full_read_due_ = false;
    last_full_read_ = now;
    const size_t rows = all.size();
    PendingIndexUpdate update = ReplaceAll(all);
    update.rows_read = rows;
    return update;
  }
  const std::vector<std::string> uuids = journal.TakeChangedPendingUsers();
  if (uuids.empty()) return PendingIndexUpdate{};
  absl::StatusOr<std::vector<PendingUser>> rows = journal.PendingUsersOf(uuids);
  if (!rows.ok()) {
    full_read_due_ = true;  // these users' notices are gone: read everyone next time
    return rows.status();
  }
  PendingIndexUpdate update = ReplaceSome(uuids, *std::move(rows));
  update.rows_read = uuids.size();
  return update;
}

PendingIndexUpdate PendingIndex::ReplaceAll(const std::vector<PendingUser>& all) {
  PendingIndexUpdate update;
  update.full = true;
  for (const PendingUser& row : all) {
    if (Put(row)) update.changed.push_back(row);
  }
  if (users_.size() == all.size()) return update;  // every row was in `all`: none left
  std::unordered_set<std::string_view> present;
  present.reserve(all.size());
  for (const PendingUser& row : all) present.insert(row.uuid);
  std::vector<std::string> left;
  for (const auto& [uuid, row] : users_) {
    if (present.count(uuid) == 0) left.push_back(uuid);
  }
  for (const std::string& uuid : left) {
    Remove(uuid);
    update.changed.push_back(PendingUser{uuid, 0, absl::InfinitePast(), absl::InfinitePast()});
  }
  return update;
}

PendingIndexUpdate PendingIndex::ReplaceSome(const std::vector<std::string>& uuids,
                                             std::vector<PendingUser> rows) {
  PendingIndexUpdate update;
  std::unordered_set<std::string> with_row;
  for (PendingUser& row : rows) {
    with_row.insert(row.uuid);
    if (Put(row)) update.changed.push_back(std::move(row));
  }
  for (const std::string& uuid : uuids) {
    if (with_row.count(uuid) == 0 && Remove(uuid)) {
      update.changed.push_back(PendingUser{uuid, 0, absl::InfinitePast(), absl::InfinitePast()});
    }
  }
  return update;
}

bool PendingIndex::Put(const PendingUser& row) {
  if (row.bytes == 0) return Remove(row.uuid);
  auto [it, inserted] = users_.try_emplace(row.uuid, row);
  if (!inserted) {
    if (SameRow(it->second, row)) return false;
    by_age_.erase({it->second.first_pending_at, it->first});
    it->second = row;
  }
  by_age_.emplace(std::make_pair(row.first_pending_at, std::string_view(it->first)), &it->second);
  return true;
}

bool PendingIndex::Remove(const std::string& uuid) {
  auto it = users_.find(uuid);
  if (it == users_.end()) return false;
  by_age_.erase({it->second.first_pending_at, it->first});
  urgent_.erase(uuid);
  users_.erase(it);
  return true;
}

const PendingUser* PendingIndex::Find(const std::string& uuid) const {
  auto it = users_.find(uuid);
  return it == users_.end() ? nullptr : &it->second;
}

void PendingIndex::ForEachOldestFirst(
    const std::function<bool(const PendingUser&)>& visit) const {
  for (const auto& [key, user] : by_age_) {
    if (!visit(*user)) return;
  }
}

void PendingIndex::SetUrgency(const std::string& uuid, const UserUrgency& urgency) {
  if (urgency.urgent && users_.count(uuid) > 0) {
    urgent_[uuid] = urgency;
  } else {
    urgent_.erase(uuid);
  }
}

}  // namespace hsync::hub
