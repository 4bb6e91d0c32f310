#include "hub/roster/roster_store.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
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
constexpr char kTagEpoch = 0x28;           // RosterUpdate.roster_epoch (varint)
constexpr char kTagChunkIndex = 0x30;      // RosterUpdate.chunk_index (varint)
constexpr char kTagChunkCount = 0x38;      // RosterUpdate.chunk_count (varint)
constexpr char kTagUsageUpdate = 0x42;     // RosterUpdate.usage_updates (length-delimited)
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

std::string UpdateHeader(uint64_t version, bool full, uint64_t epoch, uint32_t chunk_index = 0,
                         uint32_t chunk_count = 0) {
  std::string header;
  header.push_back(kTagVersion);
  AppendVarint(&header, version);
  if (full) {
    header.push_back(kTagFull);
    header.push_back(1);
  }
  header.push_back(kTagEpoch);
  AppendVarint(&header, epoch);
  if (chunk_count != 0) {
    if (chunk_index != 0) {
      header.push_back(kTagChunkIndex);
      AppendVarint(&header, chunk_index);
    }
    header.push_back(kTagChunkCount);
    AppendVarint(&header, chunk_count);
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

namespace {

uint64_t RandomEpoch() {
  std::random_device device;
  uint64_t epoch = 0;
  while (epoch == 0) epoch = (static_cast<uint64_t>(device()) << 32) ^ device();
  return epoch;
}

// The user without its usage fields, hashed: equal digests and a usage that
// did not go down = a usage-only change (see IsUsageGrowth).
uint64_t AccessDigest(const User& user) {
  User access = user;
  access.clear_current_usage_bytes();
  access.clear_last_online();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    access.SerializeToCodedStream(&coded);
  }
  return std::hash<std::string_view>{}(bytes);
}

bool SameRecord(const std::string& buffer, uint32_t offset, uint32_t size, const std::string& record) {
  return size == record.size() && std::memcmp(buffer.data() + offset, record.data(), size) == 0;
}

// A user record (tag, length, User bytes) back into a User.
std::optional<User> DecodeRecord(const char* record, size_t size) {
  uint64_t length = 0;
  const size_t varint = ReadVarint(record + 1, size - 1, &length);
  User user;
  if (varint == 0 || !user.ParseFromArray(record + 1 + varint, static_cast<int>(length))) {
    return std::nullopt;  // cannot happen: we encoded it
  }
  return user;
}

// Only growing usage waits for the coalesced flush: a lower value than the
// one last published or pending is a reset, a renewal or an admin's edit on
// the parent, which children must see at once (their own counters and quota
// checks follow it).
bool IsUsageGrowth(uint64_t access_digest_before, uint64_t published_usage,
                   const std::string* pending_record, uint64_t access_digest, uint64_t usage) {
  if (access_digest_before != access_digest || usage < published_usage) return false;
  if (pending_record == nullptr) return true;
  std::optional<User> pending = DecodeRecord(pending_record->data(), pending_record->size());
  return pending.has_value() && usage >= pending->current_usage_bytes();
}

// A kept full snapshot pins the bucket buffers of its version (up to a
// second copy of the roster once everything changed): once the roster moved
// on, it is let go when no stream is sending it and it is older than this —
// long enough for a reporter whose stream broke to come back and resume.
constexpr absl::Duration kSnapshotKeep = absl::Minutes(2);

}  // namespace

EncodedMessage FullRosterSnapshot::Chunk(size_t index) const {
  EncodedMessage message;
  message.Append(UpdateHeader(version, /*full=*/true, epoch, static_cast<uint32_t>(index),
                              static_cast<uint32_t>(buckets.size())));
  if (index < buckets.size() && buckets[index] != nullptr) {
    message.Append(buckets[index], 0, buckets[index]->size());
  }
  return message;
}

RosterStore::RosterStore(RosterStoreOptions options)
    : options_(options),
      epoch_(options.epoch != 0 ? options.epoch : RandomEpoch()),
      usage_(options.usage_interval) {
  absl::MutexLock lock(&mu_);
  buckets_.resize(std::max<size_t>(1, options_.buckets));
}

RosterStore::~RosterStore() = default;

size_t RosterStore::BucketOf(const std::string& uuid) const {
  return std::hash<std::string_view>{}(uuid) % buckets_.size();
}

std::unique_ptr<RosterStore::Replacement> RosterStore::BeginReplace(absl::Time fetch_started_at) {
  return std::unique_ptr<Replacement>(new Replacement(this, fetch_started_at));
}

void RosterStore::Replacement::Add(const User& user) {
  if (!status_.ok()) return;
  if (user.uuid().empty()) {
    status_ = absl::InvalidArgumentError(
        absl::StrCat("user #", seen_.size(), " of the parent's list has no uuid"));
    return;
  }
  if (!seen_.insert(user.uuid()).second) {
    status_ = absl::InvalidArgumentError(
        absl::StrCat("uuid ", user.uuid(), " appears twice in the parent's list"));
    return;
  }
  std::string record = EncodeUserRecord(user);
  {
    absl::MutexLock lock(&store_->mu_);
    const Bucket& bucket = store_->buckets_[store_->BucketOf(user.uuid())];
    auto it = bucket.users.find(user.uuid());
    if (it != bucket.users.end()) {
      const Loc& loc = it->second;
      if (loc.upserted_at >= fetch_started_at_) return;  // a PATCH answer is newer than this list
      const std::string* pending = store_->usage_.Find(user.uuid());
      if (pending == nullptr ? SameRecord(*bucket.buffer, loc.offset, loc.size, record)
                             : *pending == record) {
        return;  // unchanged: not kept
      }
    }
  }
  candidates_.push_back(Candidate{user.uuid(), std::move(record), AccessDigest(user),
                                  user.current_usage_bytes()});
}

absl::StatusOr<RosterChange> RosterStore::Replacement::Commit(const KeptUsers& kept,
                                                               absl::Time now) {
  if (!status_.ok()) return status_;
  RosterStore& s = *store_;
  RosterChange change;
  {
    absl::MutexLock lock(&s.mu_);
    const bool first_load = !s.loaded_;
    absl::flat_hash_map<size_t, BucketChanges> changes;
    for (Candidate& c : candidates_) {
      const size_t b = s.BucketOf(c.uuid);
      const Bucket& bucket = s.buckets_[b];
      auto it = bucket.users.find(c.uuid);
      if (it != bucket.users.end()) {
        const Loc& loc = it->second;
        if (loc.upserted_at >= fetch_started_at_) continue;  // upserted since Add
        if (SameRecord(*bucket.buffer, loc.offset, loc.size, c.record)) {
          s.usage_.Erase(c.uuid);  // back to what children have
          continue;
        }
        const std::string* pending = s.usage_.Find(c.uuid);
        if (pending != nullptr && *pending == c.record) continue;
        if (s.options_.usage_interval > absl::ZeroDuration() &&
            IsUsageGrowth(loc.access_digest, loc.usage, pending, c.access_digest, c.usage)) {
          s.usage_.Put(c.uuid, std::move(c.record), now);
          continue;
        }
      }
      s.usage_.Erase(c.uuid);
      changes[b].emplace(c.uuid, Change{std::move(c.record), c.access_digest, c.usage});
    }
    candidates_.clear();
    for (size_t b = 0; b < s.buckets_.size(); ++b) {
      for (const auto& [uuid, loc] : s.buckets_[b].users) {
        if (seen_.contains(uuid) || loc.upserted_at >= fetch_started_at_) continue;
        if (kept.all || kept.uuids.contains(uuid)) continue;  // listed, but unreadable
        changes[b].emplace(uuid, Change{std::nullopt, 0});
        s.usage_.Erase(uuid);
      }
    }
    s.loaded_ = true;
    s.fetched_at_ = std::max(s.fetched_at_, fetch_started_at_);
    if (first_load || !changes.empty()) {
      s.PublishChangesLocked(changes, /*single=*/first_load, std::nullopt, &change);
      change.changed = true;
    }
    const size_t upserts = change.upserts, removals = change.removals;
    s.FlushDueUsageLocked(now, &change);
    change.upserts = upserts;  // what this read changed, not the usage flush
    change.removals = removals;
    change.version = s.version_;
  }
  if (change.changed) s.NotifyWatchers(change.version);
  return change;
}

absl::StatusOr<RosterChange> RosterStore::ReplaceAll(std::vector<User> users,
                                                     absl::Time fetch_started_at,
                                                     const KeptUsers& kept) {
  std::unique_ptr<Replacement> replacement = BeginReplace(fetch_started_at);
  for (User& user : users) {
    replacement->Add(user);
    User().Swap(&user);  // a big roster should not be held twice
  }
  users.clear();
  users.shrink_to_fit();
  return replacement->Commit(kept);
}

RosterChange RosterStore::Upsert(const User& user, absl::Time now) {
  RosterChange change;
  if (user.uuid().empty()) return change;
  std::string record = EncodeUserRecord(user);
  const uint64_t digest = AccessDigest(user);
  {
    absl::MutexLock lock(&mu_);
    const size_t b = BucketOf(user.uuid());
    Bucket& bucket = buckets_[b];
    auto it = bucket.users.find(user.uuid());
    bool publish = true;
    if (it != bucket.users.end()) {
      Loc& loc = it->second;
      loc.upserted_at = now;
      if (SameRecord(*bucket.buffer, loc.offset, loc.size, record)) {
        usage_.Erase(user.uuid());
        publish = false;
      } else if (options_.usage_interval > absl::ZeroDuration() &&
                 IsUsageGrowth(loc.access_digest, loc.usage, usage_.Find(user.uuid()), digest,
                               user.current_usage_bytes())) {
        usage_.Put(user.uuid(), std::move(record), now);
        publish = false;
      }
    }
    if (publish) {
      usage_.Erase(user.uuid());
      absl::flat_hash_map<size_t, BucketChanges> changes;
      changes[b].emplace(user.uuid(), Change{std::move(record), digest, user.current_usage_bytes()});
      PublishChangesLocked(changes, /*single=*/true, now, &change);
      change.changed = true;
    }
    const size_t upserts = change.upserts;
    FlushDueUsageLocked(now, &change);
    change.upserts = upserts;
    change.removals = 0;
    change.version = version_;
  }
  if (change.changed) NotifyWatchers(change.version);
  return change;
}

RosterChange RosterStore::FlushDueUsage(absl::Time now) {
  RosterChange change;
  {
    absl::MutexLock lock(&mu_);
    FlushDueUsageLocked(now, &change);
    change.version = version_;
  }
  if (change.changed) NotifyWatchers(change.version);
  return change;
}

void RosterStore::FlushDueUsageLocked(absl::Time now, RosterChange* change) {
  if (!usage_.Due(now)) return;
  std::vector<std::pair<std::string, std::string>> taken = usage_.TakeAll(now);
  ++usage_flushes_;
  // Children get only the usage fields (UsageUpdate, ~70 bytes a user instead
  // of the whole record); the buckets take the whole records, so that a full
  // roster carries the latest state.
  absl::flat_hash_map<size_t, BucketChanges> changes;
  std::vector<std::string> entries;
  size_t bytes = 0;
  auto publish = [&] {
    PublishLocked({}, {}, /*record=*/true, entries);
    change->upserts += entries.size();
    entries.clear();
    bytes = 0;
  };
  for (auto& [uuid, record] : taken) {
    const size_t b = BucketOf(uuid);
    auto it = buckets_[b].users.find(uuid);
    if (it == buckets_[b].users.end()) continue;  // cannot happen: a removal erases it
    std::optional<User> user = DecodeRecord(record.data(), record.size());
    if (!user.has_value()) continue;
    hiddify_sync::v1::UsageUpdate usage;
    usage.set_uuid(uuid);
    usage.set_current_usage_bytes(user->current_usage_bytes());
    usage.set_last_online(user->last_online());
    std::string entry;
    AppendLengthDelimited(&entry, kTagUsageUpdate, usage.SerializeAsString());
    bytes += entry.size();
    entries.push_back(std::move(entry));
    changes[b].emplace(uuid, Change{std::move(record), it->second.access_digest,
                                     user->current_usage_bytes()});
    if (bytes >= kMaxDeltaBytes) publish();
  }
  if (!entries.empty()) publish();
  if (changes.empty()) return;
  for (auto& [b, bucket_changes] : changes) RebuildBucket(buckets_[b], bucket_changes, std::nullopt);
  change->changed = true;
}

void RosterStore::PublishChangesLocked(absl::flat_hash_map<size_t, BucketChanges>& changes,
                                       bool single, std::optional<absl::Time> upserted_at,
                                       RosterChange* change) {
  // A first load (single, nothing loaded before) is one version nobody can
  // hold a delta against: not kept in the history.
  const bool record = !(single && version_ == 0);
  std::vector<const std::string*> upserts;
  std::vector<std::string> removed;
  size_t bytes = 0;
  bool published = false;
  auto publish = [&] {
    PublishLocked(upserts, removed, record);
    change->upserts += upserts.size();
    change->removals += removed.size();
    upserts.clear();
    removed.clear();
    bytes = 0;
    published = true;
  };
  for (auto& [b, bucket_changes] : changes) {
    for (auto& [uuid, c] : bucket_changes) {
      if (c.record.has_value()) {
        upserts.push_back(&*c.record);
        bytes += c.record->size();
      } else {
        removed.push_back(uuid);
        bytes += uuid.size() + 2;
      }
      if (!single && bytes >= kMaxDeltaBytes) publish();
    }
  }
  if (!upserts.empty() || !removed.empty() || !published) publish();
  // After publishing: the rebuild moves the records.
  for (auto& [b, bucket_changes] : changes) RebuildBucket(buckets_[b], bucket_changes, upserted_at);
}

void RosterStore::RebuildBucket(Bucket& bucket, BucketChanges& changes,
                                std::optional<absl::Time> upserted_at) {
  size_t new_size = 0;
  for (const auto& [uuid, loc] : bucket.users) {
    if (!changes.contains(uuid)) new_size += loc.size;
  }
  for (const auto& [uuid, c] : changes) {
    if (c.record.has_value()) new_size += c.record->size();
  }
  auto buffer = std::make_shared<std::string>();
  buffer->reserve(new_size);
  for (auto& [uuid, loc] : bucket.users) {
    if (changes.contains(uuid)) continue;
    const uint32_t offset = static_cast<uint32_t>(buffer->size());
    buffer->append(bucket.buffer->data() + loc.offset, loc.size);
    loc.offset = offset;
  }
  for (auto& [uuid, c] : changes) {
    auto it = bucket.users.find(uuid);
    const std::optional<std::string>& record = c.record;
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
    loc.access_digest = c.access_digest;
    loc.usage = c.usage;
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
                                const std::vector<std::string>& removed, bool record,
                                const std::vector<std::string>& usage_entries) {
  ++version_;
  full_cache_.reset();
  if (last_snapshot_ != nullptr && last_snapshot_.use_count() == 1 &&
      absl::Now() - last_snapshot_made_at_ > kSnapshotKeep) {
    last_snapshot_.reset();
  }
  std::string header = UpdateHeader(version_, /*full=*/false, epoch_);
  size_t size = header.size();
  for (const std::string* record : upserts) size += record->size();
  for (const std::string& uuid : removed) size += uuid.size() + 6;
  for (const std::string& entry : usage_entries) size += entry.size();
  if (!record || size > options_.history_max_bytes) {
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
  for (const std::string& entry : usage_entries) bytes.append(entry);
  update->message.Append(std::move(bytes));
  history_bytes_ += update->message.total_size;
  history_.push_back(std::move(update));
  while (!history_.empty() && ((options_.history_max_updates != 0 &&
                                history_.size() > options_.history_max_updates) ||
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
  if (const std::string* pending = usage_.Find(uuid); pending != nullptr) {
    return DecodeRecord(pending->data(), pending->size());  // newer than what children have
  }
  return DecodeRecord(bucket.buffer->data() + it->second.offset, it->second.size);
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
    full->message.Append(UpdateHeader(version_, /*full=*/true, epoch_));
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

std::shared_ptr<const FullRosterSnapshot> RosterStore::FullSnapshot() const {
  absl::MutexLock lock(&mu_);
  if (!loaded_) return nullptr;
  if (last_snapshot_ == nullptr || last_snapshot_->version != version_) {
    auto snapshot = std::make_shared<FullRosterSnapshot>();
    snapshot->version = version_;
    snapshot->epoch = epoch_;
    snapshot->users = size_;
    snapshot->buckets.reserve(buckets_.size());
    for (const Bucket& bucket : buckets_) snapshot->buckets.push_back(bucket.buffer);
    last_snapshot_ = std::move(snapshot);
    last_snapshot_made_at_ = absl::Now();
  }
  return last_snapshot_;
}

std::shared_ptr<const FullRosterSnapshot> RosterStore::FullSnapshotAt(uint64_t version) const {
  absl::MutexLock lock(&mu_);
  if (last_snapshot_ == nullptr || last_snapshot_->version != version) return nullptr;
  return last_snapshot_;
}

bool RosterStore::HasDeltasAfter(uint64_t version) const {
  absl::MutexLock lock(&mu_);
  if (!loaded_ || version == 0 || version > version_) return false;
  if (version == version_) return true;
  return !history_.empty() && history_.front()->version <= version + 1;
}

RosterStoreStats RosterStore::Stats() const {
  absl::MutexLock lock(&mu_);
  RosterStoreStats stats;
  stats.epoch = epoch_;
  stats.history_updates = history_.size();
  stats.history_bytes = history_bytes_;
  stats.history_max_bytes = options_.history_max_bytes;
  stats.history_oldest_version = history_.empty() ? 0 : history_.front()->version;
  stats.usage_pending = usage_.size();
  stats.usage_interval = options_.usage_interval;
  stats.usage_flushes = usage_flushes_;
  return stats;
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
