#include "hub/roster/usage_coalescer.h"

#include <algorithm>

namespace hsync::hub {

void UsageCoalescer::Put(const std::string& uuid, std::string record, absl::Time now) {
  if (pending_.empty()) next_flush_at_ = std::max(now, last_flush_at_) + interval_;
  pending_[uuid] = std::move(record);
}

void UsageCoalescer::Erase(const std::string& uuid) { pending_.erase(uuid); }

const std::string* UsageCoalescer::Find(const std::string& uuid) const {
  auto it = pending_.find(uuid);
  return it == pending_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, std::string>> UsageCoalescer::TakeAll(absl::Time now) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(pending_.size());
  for (auto& [uuid, record] : pending_) out.emplace_back(uuid, std::move(record));
  absl::flat_hash_map<std::string, std::string>().swap(pending_);
  last_flush_at_ = now;
  next_flush_at_ = now + interval_;
  return out;
}

}  // namespace hsync::hub
