// The hub's copy of the parent's user list (the roster) and the stream of
// changes to it (ARCHITECTURE.md "The roster, end to end").
//
// Users are kept by uuid in their deterministic protobuf encoding, which
// serves as the per-user digest: a user "changed" when its encoding differs.
// Every published change bumps `version` by one and is recorded as one delta
// RosterUpdate{version, full=false, upserts, removed_uuids} (large changes
// are split into deltas of about kMaxDeltaBytes each); watchers are told the
// new version and pull what they still need with NextUpdate(), so there is
// no per-stream queue: a stream that falls behind the delta history (bounded
// by bytes) simply gets a fresh full update.
//
// Usage-only changes (current_usage_bytes, last_online: nothing a child does
// with them changes what the user can do) are not published at once: they
// wait in a UsageCoalescer and go out together every `usage_interval`, as
// RosterUpdate.usage_updates (the usage fields only, not the whole user). Any
// other change (enable/is_active, quota, dates, mode, keys, name, comment,
// lang, telegram_id, creation, removal) is published at once, with the
// user's latest usage. Lookup() always answers the latest state.
//
// Versions count within one hub run, named by a random `epoch` sent with
// every update: a stream that says it holds version V of this epoch gets the
// deltas after V (if still in the history); of another epoch, a full roster.
// A full roster can be sent in chunks (one per bucket) to streams that accept
// them; the last full snapshot stays available by version so that a broken
// chunked stream can resume where it stopped.
//
// Messages are handed out pre-encoded (EncodedMessage) as byte ranges of
// shared immutable buffers: users live in 64 bucket buffers, each holding
// the wire records of its users, and a full update is a header plus the
// bucket buffers — hundreds of streams send the same roster without copying
// it. A change copies only its bucket (1/64 of the roster: ~1.2 MB at
// 100,000 users). Few, large buffers keep gRPC's per-stream bookkeeping small
// (hub_memory_bench: 1024 buckets cost ~85 KB per open stream, 64 ~25 KB).
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/roster/usage_coalescer.h"

namespace hsync::hub {

// A serialized protobuf message as byte ranges of shared buffers, to be sent
// back to back.
struct EncodedMessage {
  struct Piece {
    std::shared_ptr<const std::string> owner;
    size_t offset = 0;
    size_t size = 0;
  };
  std::vector<Piece> pieces;
  size_t total_size = 0;

  void Append(std::shared_ptr<const std::string> owner, size_t offset, size_t size);
  void Append(std::string bytes);  // takes ownership of a small piece
  // The whole message in one string (tests, small messages).
  std::string Flatten() const;
};

// A full roster at one version as its bucket buffers (shared, immutable):
// chunk i of a chunked full update is bucket i.
struct FullRosterSnapshot {
  uint64_t version = 0;
  uint64_t epoch = 0;
  size_t users = 0;
  std::vector<std::shared_ptr<const std::string>> buckets;  // null = empty bucket
  // Chunk `index` of buckets.size() as an encoded RosterUpdate (full = true).
  EncodedMessage Chunk(size_t index) const;
  size_t chunk_count() const { return buckets.size(); }
};

// One RosterUpdate, encoded.
struct EncodedRosterUpdate {
  uint64_t version = 0;
  bool full = false;
  size_t upserts = 0;
  size_t removals = 0;
  EncodedMessage message;
};

// Told about every new roster version. Called on the thread that changed the
// roster, with no store lock held; must return quickly (no blocking I/O).
class RosterWatcher {
 public:
  virtual ~RosterWatcher() = default;
  virtual void OnRosterChanged(uint64_t version) = 0;
};

// What a ReplaceAll/Upsert did. `version` is the store's version afterwards.
struct RosterChange {
  bool changed = false;
  uint64_t version = 0;
  size_t upserts = 0;
  size_t removals = 0;
};

// Users the store must keep although a list read lacks them: the parent
// listed them but the hub could not read them (hub/parent/panel_user_json.h). They
// stay as they were — children are not told to remove a user the parent has.
struct KeptUsers {
  absl::flat_hash_set<std::string> uuids;
  bool all = false;  // an unreadable element had no uuid: remove nobody this time
};

struct RosterStoreOptions {
  size_t buckets = 64;  // see the class comment
  // Deltas kept for streams that are behind (total encoded bytes; older ones
  // -> full update). history_max_updates: also at most this many (0 = no limit).
  size_t history_max_updates = 0;
  size_t history_max_bytes = 64u << 20;
  // Usage-only changes are published at most once per this interval (0 = at once).
  absl::Duration usage_interval = absl::Seconds(120);
  // Names this run's versions; 0 = a random one.
  uint64_t epoch = 0;
};

// A published change bigger than this is split into several deltas.
inline constexpr size_t kMaxDeltaBytes = size_t{1} << 20;

// What the store's delta history and coalescer hold (status).
struct RosterStoreStats {
  uint64_t epoch = 0;
  size_t history_updates = 0;
  size_t history_bytes = 0;
  size_t history_max_bytes = 0;
  uint64_t history_oldest_version = 0;  // 0 = empty history
  size_t usage_pending = 0;
  absl::Duration usage_interval;
  uint64_t usage_flushes = 0;
};

class RosterStore {
 public:
  explicit RosterStore(RosterStoreOptions options = {});
  ~RosterStore();
  RosterStore(const RosterStore&) = delete;
  RosterStore& operator=(const RosterStore&) = delete;

  // One list read fed user by user (the parent's list parsed as it arrives):
  // keeps only the users that differ from the store, so its memory is
  // proportional to the changes, not to the list. Nothing is published
  // before Commit; dropping it uncommitted (a failed read) changes nothing.
  class Replacement {
   public:
    // Takes one user of the list. An empty or repeated uuid makes Commit fail.
    void Add(const hiddify_sync::v1::User& user);
    // As ReplaceAll, with the users added; `now` dates usage changes held
    // for the coalesced flush (and a flush that is due).
    absl::StatusOr<RosterChange> Commit(const KeptUsers& kept = {}, absl::Time now = absl::Now());
    size_t added() const { return seen_.size(); }

   private:
    friend class RosterStore;
    Replacement(RosterStore* store, absl::Time fetch_started_at)
        : store_(store), fetch_started_at_(fetch_started_at) {}
    struct Candidate {
      std::string uuid;
      std::string record;
      uint64_t access_digest = 0;
      uint64_t usage = 0;  // current_usage_bytes
    };
    RosterStore* store_;
    absl::Time fetch_started_at_;
    absl::Status status_;
    absl::flat_hash_set<std::string> seen_;
    std::vector<Candidate> candidates_;
  };
  // Starts a list read that began at `fetch_started_at` (see ReplaceAll).
  std::unique_ptr<Replacement> BeginReplace(absl::Time fetch_started_at);

  // Makes the roster equal `users`, a complete list read from the parent by a
  // request that started at `fetch_started_at`. Users upserted at or after
  // that moment keep their newer state (a list read before a PATCH answer
  // must not undo it). The first call always bumps the version (the roster
  // becomes "loaded"); later calls only when something changed. An empty or
  // repeated uuid is InvalidArgument and changes nothing. Users in `kept`
  // (or all, with kept.all) are not removed for being absent from `users`;
  // a kept uuid the store never had stays absent.
  absl::StatusOr<RosterChange> ReplaceAll(std::vector<hiddify_sync::v1::User> users,
                                          absl::Time fetch_started_at,
                                          const KeptUsers& kept = {});

  // Puts one user as the parent just answered it (PATCH). Bumps the version
  // and notifies watchers when it differs from what the store has in more
  // than usage; a usage-only change waits for the next coalesced flush. An
  // empty uuid is ignored.
  RosterChange Upsert(const hiddify_sync::v1::User& user, absl::Time now = absl::Now());

  // A read that started at `fetch_started_at` found the parent unchanged:
  // only fetched_at moves (nothing before the first ReplaceAll).
  void MarkFresh(absl::Time fetch_started_at);
  // Publishes the pending usage-only changes when their flush is due (cheap
  // when not: callers may call it every second). ReplaceAll and Upsert call it too.
  RosterChange FlushDueUsage(absl::Time now = absl::Now());

  std::optional<hiddify_sync::v1::User> Lookup(const std::string& uuid) const;

  bool loaded() const;
  uint64_t version() const;
  size_t size() const;
  absl::Time fetched_at() const;  // start of the last successful list read; InfinitePast before

  // What a stream that has sent everything up to `sent_version` (0 = nothing
  // yet) should send next: nullptr when it is up to date or the roster is not
  // loaded yet; the delta `sent_version + 1` when still in the history; else a
  // full update at the current version.
  std::shared_ptr<const EncodedRosterUpdate> NextUpdate(uint64_t sent_version) const;
  // A full update at the current version (nullptr before the first load).
  std::shared_ptr<const EncodedRosterUpdate> FullUpdate() const;
  // The full roster at the current version as chunks (nullptr before the
  // first load). The latest snapshot made stays available by its version.
  std::shared_ptr<const FullRosterSnapshot> FullSnapshot() const;
  // The snapshot of `version` if it is still the one kept, else nullptr.
  std::shared_ptr<const FullRosterSnapshot> FullSnapshotAt(uint64_t version) const;

  uint64_t epoch() const { return epoch_; }
  // True when a stream holding `version` can go on with deltas (the history
  // reaches back to version + 1, or it is up to date).
  bool HasDeltasAfter(uint64_t version) const;
  RosterStoreStats Stats() const;
  // The roster as an encoded RosterSnapshot (GetRoster).
  EncodedMessage EncodeSnapshot() const;

  // Watchers are notified of every version after AddWatcher returns, until
  // RemoveWatcher returns (which waits for a notification in progress).
  void AddWatcher(RosterWatcher* watcher);
  void RemoveWatcher(RosterWatcher* watcher);
  size_t watcher_count() const;

 private:
  // A user's wire record inside its bucket's buffer: tag 0x1a (RosterUpdate.upserts),
  // length, User bytes.
  struct Loc {
    uint32_t offset = 0;  // of the record (tag byte)
    uint32_t size = 0;    // of the whole record
    uint64_t access_digest = 0;  // of the user without its usage fields
    uint64_t usage = 0;          // current_usage_bytes of the record
    absl::Time upserted_at = absl::InfinitePast();
  };
  struct Change {
    std::optional<std::string> record;  // nullopt = remove
    uint64_t access_digest = 0;
    uint64_t usage = 0;
  };
  struct Bucket {
    std::shared_ptr<const std::string> buffer;
    absl::flat_hash_map<std::string, Loc> users;
  };
  // uuid -> new record (nullopt = remove), for one bucket.
  using BucketChanges = absl::flat_hash_map<std::string, Change>;

  size_t BucketOf(const std::string& uuid) const;
  // Rewrites one bucket's buffer with `changes` applied; sets upserted_at of
  // changed users to `upserted_at` when given.
  void RebuildBucket(Bucket& bucket, BucketChanges& changes, std::optional<absl::Time> upserted_at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bumps the version and records the delta built from `upserts` (records)
  // and `removed` (uuids).
  // `record` = false: not kept in the history (nobody can hold the version before).
  // `usage_entries`: encoded RosterUpdate.usage_updates records.
  void PublishLocked(const std::vector<const std::string*>& upserts,
                     const std::vector<std::string>& removed, bool record,
                     const std::vector<std::string>& usage_entries = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Publishes `changes` (per bucket) as deltas of about kMaxDeltaBytes (one
  // version each; a single version when `single`), then rebuilds their buckets.
  void PublishChangesLocked(absl::flat_hash_map<size_t, BucketChanges>& changes, bool single,
                            std::optional<absl::Time> upserted_at, RosterChange* change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the coalesced usage changes when due and publishes them.
  void FlushDueUsageLocked(absl::Time now, RosterChange* change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyWatchers(uint64_t version);

  const RosterStoreOptions options_;
  const uint64_t epoch_;

  mutable absl::Mutex mu_;
  std::vector<Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time fetched_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Consecutive deltas ending at version_ (may be empty).
  std::deque<std::shared_ptr<const EncodedRosterUpdate>> history_ ABSL_GUARDED_BY(mu_);
  size_t history_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  mutable std::shared_ptr<const EncodedRosterUpdate> full_cache_ ABSL_GUARDED_BY(mu_);
  mutable std::shared_ptr<const FullRosterSnapshot> last_snapshot_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time last_snapshot_made_at_ ABSL_GUARDED_BY(mu_);
  UsageCoalescer usage_ ABSL_GUARDED_BY(mu_);
  uint64_t usage_flushes_ ABSL_GUARDED_BY(mu_) = 0;

  mutable absl::Mutex watchers_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<RosterWatcher*> watchers_ ABSL_GUARDED_BY(watchers_mu_);
};

}  // namespace hsync::hub
