#include "hub/roster/roster_store.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace hsync::hub {
namespace {

using hiddify_sync::v1::User;

// Wire tags (field number << 3 | wire type) of the messages we encode by hand.
constexpr char kTagVersion = 0x08;         // RosterUpdate.version, RosterSnapshot.version (varint)
constexpr char kTagFull = 0x10;            // RosterUpdate.full (varint)
constexpr char kTagUpsert = 0x1a;          // RosterUpdate.upserts (length-delimited)
constexpr char kTagRemoved = 0x22;         // RosterUpdate.removed_uuids
constexpr char kTagSnapshotUser = 0x12;    // RosterSnapshot.users
constexpr char kTagSnapshotFetched = 0x1a; // RosterSnapshot.fetched_at

void AppendVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads a varint at `data`; returns its length in bytes (0 if malformed).
size_t ReadVarint(const char* data, size_t size, uint64_t* value) {
  uint64_t result = 0;
  for (size_t i = 0; i < size && i < 10; ++i) {
    const uint8_t byte = static_cast<uint8_t>(data[i]);
    result |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) {
      *value = result;
      return i + 1;
    }
  }
  return 0;
}

void AppendLengthDelimited(std::string* out, char tag, std::string_view bytes) {
  out->push_back(tag);
  AppendVarint(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

// The user's record as it appears in RosterUpdate.upserts: tag, length,
// deterministic encoding of the user.
std::string EncodeUserRecord(const User& user) {
  std::string record;
  const size_t size = user.ByteSizeLong();
  record.reserve(size + 6);
  record.push_back(kTagUpsert);
  AppendVarint(&record, size);
  {
    google::protobuf::io::StringOutputStream stream(&record);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    user.SerializeWithCachedSizes(&coded);
  }
  return record;
}

std::string UpdateHeader(uint64_t version, bool full) {
  std::string header;
  header.push_back(kTagVersion);
  AppendVarint(&header, version);
  if (full) {
    header.push_back(kTagFull);
    header.push_back(1);
  }
  return header;
}

}  // namespace

void EncodedMessage::Append(std::shared_ptr<const std::string> owner, size_t offset, size_t size) {
  if (size == 0) return;
  total_size += size;
  pieces.push_back(Piece{std::move(owner), offset, size});
}

void EncodedMessage::Append(std::string bytes) {
  const size_t size = bytes.size();
  Append(std::make_shared<const std::string>(std::move(bytes)), 0, size);
}

std::string EncodedMessage::Flatten() const {
  std::string out;
  out.reserve(total_size);
  for (const Piece& piece : pieces) out.append(piece.owner->data() + piece.offset, piece.size);
  return out;
}

RosterStore::RosterStore(RosterStoreOptions options) : options_(options) {
  absl::MutexLock lock(&mu_);
  buckets_.resize(std::max<size_t>(1, options_.buckets));
}

RosterStore::~RosterStore() = default;

size_t RosterStore::BucketOf(const std::string& uuid) const {
  return std::hash<std::string_view>{}(uuid) % buckets_.size();
}

absl::StatusOr<RosterChange> RosterStore::ReplaceAll(std::vector<User> users,
                                                     absl::Time fetch_started_at,
                                                     const KeptUsers& kept) {
  // Encode outside the lock; free each user as soon as it is encoded (a big
  // roster should not be held twice).
  struct Incoming {
    std::string uuid;
    std::string record;
  };
  std::vector<Incoming> incoming;
  incoming.reserve(users.size());
  absl::flat_hash_set<std::string_view> seen;
  seen.reserve(users.size());
  for (size_t i = 0; i < users.size(); ++i) {
    if (users[i].uuid().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("user #", i, " of the parent's list has no uuid"));
    }
    incoming.push_back(Incoming{users[i].uuid(), EncodeUserRecord(users[i])});
    if (!seen.insert(incoming.back().uuid).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("uuid ", incoming.back().uuid, " appears twice in the parent's list"));
    }
    User().Swap(&users[i]);
  }
  users.clear();
  users.shrink_to_fit();

  RosterChange change;
  {
    absl::MutexLock lock(&mu_);
    absl::flat_hash_map<size_t, BucketChanges> changes;
    std::vector<std::string> removed;
    for (Incoming& user : incoming) {
      const size_t b = BucketOf(user.uuid);
      const Bucket& bucket = buckets_[b];
      auto it = bucket.users.find(user.uuid);
      if (it != bucket.users.end()) {
        const Loc& loc = it->second;
        if (loc.upserted_at >= fetch_started_at) continue;  // a PATCH answer is newer than this list
        if (loc.size == user.record.size() &&
            std::memcmp(bucket.buffer->data() + loc.offset, user.record.data(), loc.size) == 0) {
          continue;
        }
      }
      changes[b].emplace(user.uuid, std::move(user.record));
    }
    for (size_t b = 0; b < buckets_.size(); ++b) {
      for (const auto& [uuid, loc] : buckets_[b].users) {
        if (seen.contains(uuid) || loc.upserted_at >= fetch_started_at) continue;
        if (kept.all || kept.uuids.contains(uuid)) continue;  // listed, but unreadable
        changes[b].emplace(uuid, std::nullopt);
        removed.push_back(uuid);
      }
    }
    std::vector<const std::string*> upserts;
    for (auto& [b, bucket_changes] : changes) {
      for (auto& [uuid, record] : bucket_changes) {
        if (record.has_value()) upserts.push_back(&*record);
      }
    }
    const bool first_load = !loaded_;
    loaded_ = true;
    fetched_at_ = std::max(fetched_at_, fetch_started_at);
    if (first_load || !upserts.empty() || !removed.empty()) {
      PublishLocked(upserts, removed);  // before the rebuild moves the records
      for (auto& [b, bucket_changes] : changes) RebuildBucket(buckets_[b], bucket_changes, std::nullopt);
      change.changed = true;
    }
    change.version = version_;
    change.upserts = upserts.size();
    change.removals = removed.size();
  }
  if (change.changed) NotifyWatchers(change.version);
  return change;
}

RosterChange RosterStore::Upsert(const User& user, absl::Time now) {
  RosterChange change;
  if (user.uuid().empty()) return change;
  std::string record = EncodeUserRecord(user);
  {
    absl::MutexLock lock(&mu_);
    Bucket& bucket = buckets_[BucketOf(user.uuid())];
    auto it = bucket.users.find(user.uuid());
    if (it != bucket.users.end() && it->second.size == record.size() &&
        std::memcmp(bucket.buffer->data() + it->second.offset, record.data(), record.size()) == 0) {
      it->second.upserted_at = now;
      change.version = version_;
      return change;
    }
    const std::string* record_ptr = &record;
    PublishLocked({record_ptr}, {});
    BucketChanges changes;
    changes.emplace(user.uuid(), std::move(record));
    RebuildBucket(bucket, changes, now);
    change.changed = true;
    change.version = version_;
    change.upserts = 1;
  }
  NotifyWatchers(change.version);
  return change;
}

void RosterStore::RebuildBucket(Bucket& bucket, BucketChanges& changes,
                                std::optional<absl::Time> upserted_at) {
  size_t new_size = 0;
  for (const auto& [uuid, loc] : bucket.users) {
    if (!changes.contains(uuid)) new_size += loc.size;
  }
  for (const auto& [uuid, record] : changes) {
    if (record.has_value()) new_size += record->size();
  }
  auto buffer = std::make_shared<std::string>();
  buffer->reserve(new_size);
  for (auto& [uuid, loc] : bucket.users) {
    if (changes.contains(uuid)) continue;
    const uint32_t offset = static_cast<uint32_t>(buffer->size());
    buffer->append(bucket.buffer->data() + loc.offset, loc.size);
    loc.offset = offset;
  }
  for (auto& [uuid, record] : changes) {
    auto it = bucket.users.find(uuid);
    if (!record.has_value()) {
      if (it != bucket.users.end()) {
        bucket.users.erase(it);
        --size_;
      }
      continue;
    }
    Loc loc;
    if (it != bucket.users.end()) {
      loc = it->second;
    } else {
      ++size_;
    }
    loc.offset = static_cast<uint32_t>(buffer->size());
    loc.size = static_cast<uint32_t>(record->size());
    if (upserted_at.has_value()) loc.upserted_at = *upserted_at;
    buffer->append(*record);
    bucket.users[uuid] = loc;
  }
  if (bucket.users.empty()) {
    bucket.buffer.reset();
    absl::flat_hash_map<std::string, Loc>().swap(bucket.users);
  } else {
    bucket.buffer = std::move(buffer);
  }
}

void RosterStore::PublishLocked(const std::vector<const std::string*>& upserts,
                                const std::vector<std::string>& removed) {
  ++version_;
  full_cache_.reset();
  std::string header = UpdateHeader(version_, /*full=*/false);
  size_t size = header.size();
  for (const std::string* record : upserts) size += record->size();
  for (const std::string& uuid : removed) size += uuid.size() + 6;
  if (size > options_.history_max_bytes) {
    // Too big to keep: streams that have not seen it get a full update.
    history_.clear();
    history_bytes_ = 0;
    return;
  }
  auto update = std::make_shared<EncodedRosterUpdate>();
  update->version = version_;
  update->full = false;
  update->upserts = upserts.size();
  update->removals = removed.size();
  std::string bytes = std::move(header);
  bytes.reserve(size);
  for (const std::string* record : upserts) bytes.append(*record);
  for (const std::string& uuid : removed) AppendLengthDelimited(&bytes, kTagRemoved, uuid);
  update->message.Append(std::move(bytes));
  history_bytes_ += update->message.total_size;
  history_.push_back(std::move(update));
  while (!history_.empty() && (history_.size() > options_.history_max_updates ||
                               history_bytes_ > options_.history_max_bytes)) {
    history_bytes_ -= history_.front()->message.total_size;
    history_.pop_front();
  }
}

void RosterStore::NotifyWatchers(uint64_t version) {
  absl::MutexLock lock(&watchers_mu_);
  for (RosterWatcher* watcher : watchers_) watcher->OnRosterChanged(version);
}

std::optional<User> RosterStore::Lookup(const std::string& uuid) const {
  absl::MutexLock lock(&mu_);
  const Bucket& bucket = buckets_[BucketOf(uuid)];
  auto it = bucket.users.find(uuid);
  if (it == bucket.users.end()) return std::nullopt;
  const char* record = bucket.buffer->data() + it->second.offset;
  uint64_t length = 0;
  const size_t varint = ReadVarint(record + 1, it->second.size - 1, &length);
  User user;
  if (varint == 0 || !user.ParseFromArray(record + 1 + varint, static_cast<int>(length))) {
    return std::nullopt;  // cannot happen: we encoded it
  }
  return user;
}

bool RosterStore::loaded() const {
  absl::MutexLock lock(&mu_);
  return loaded_;
}

uint64_t RosterStore::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

size_t RosterStore::size() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

void RosterStore::MarkFresh(absl::Time fetch_started_at) {
  absl::MutexLock lock(&mu_);
  if (loaded_) fetched_at_ = std::max(fetched_at_, fetch_started_at);
}

absl::Time RosterStore::fetched_at() const {
  absl::MutexLock lock(&mu_);
  return fetched_at_;
}

std::shared_ptr<const EncodedRosterUpdate> RosterStore::NextUpdate(uint64_t sent_version) const {
  absl::MutexLock lock(&mu_);
  if (!loaded_ || sent_version >= version_) return nullptr;
  if (sent_version != 0 && !history_.empty() && history_.front()->version <= sent_version + 1) {
    return history_[sent_version + 1 - history_.front()->version];
  }
  if (full_cache_ == nullptr) {
    auto full = std::make_shared<EncodedRosterUpdate>();
    full->version = version_;
    full->full = true;
    full->upserts = size_;
    full->message.Append(UpdateHeader(version_, /*full=*/true));
    for (const Bucket& bucket : buckets_) {
      if (bucket.buffer != nullptr) full->message.Append(bucket.buffer, 0, bucket.buffer->size());
    }
    full_cache_ = std::move(full);
  }
  return full_cache_;
}

std::shared_ptr<const EncodedRosterUpdate> RosterStore::FullUpdate() const {
  return NextUpdate(0);
}

EncodedMessage RosterStore::EncodeSnapshot() const {
  absl::MutexLock lock(&mu_);
  EncodedMessage message;
  std::string header;
  header.push_back(kTagVersion);
  AppendVarint(&header, version_);
  if (version_ != 0) message.Append(std::move(header));
  for (const Bucket& bucket : buckets_) {
    if (bucket.buffer == nullptr) continue;
    // Same records, tagged as RosterSnapshot.users.
    std::string copy = *bucket.buffer;
    for (const auto& [uuid, loc] : bucket.users) copy[loc.offset] = kTagSnapshotUser;
    message.Append(std::move(copy));
  }
  if (loaded_) {
    std::string fetched;
    AppendLengthDelimited(&fetched, kTagSnapshotFetched,
                          ToProtoTimestamp(fetched_at_).SerializeAsString());
    message.Append(std::move(fetched));
  }
  return message;
}

void RosterStore::AddWatcher(RosterWatcher* watcher) {
  absl::MutexLock lock(&watchers_mu_);
  watchers_.push_back(watcher);
}

void RosterStore::RemoveWatcher(RosterWatcher* watcher) {
  absl::MutexLock lock(&watchers_mu_);
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
}

size_t RosterStore::watcher_count() const {
  absl::MutexLock lock(&watchers_mu_);
  return watchers_.size();
}

}  // namespace hsync::hub
