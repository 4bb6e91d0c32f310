// A full roster that arrives in chunks (RosterUpdate.chunk_index of
// chunk_count, one version): which version is being put together, the next
// chunk expected, and every uuid the chunks carried so far — the users the
// parent has — so that users absent on the parent are judged once, after the
// last chunk, on the whole roster. It outlives a broken stream (the follower
// asks the hub to resume at next_chunk()), not a restart of the reporter.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::reporter {

class FullRosterAssembly {
 public:
  enum class Step {
    kBegin,       // chunk 0: a new full roster starts (one in progress is dropped)
    kContinue,    // the next chunk of the full roster in progress
    kOutOfOrder,  // anything else: the stream must be reopened
  };
  // Where `chunk` (chunk_count > 0) fits; kBegin resets the assembly to it.
  Step Accept(const hiddify_sync::v1::RosterUpdate& chunk);
  // The chunk was applied: its users are present, the next chunk is expected.
  void Applied(const hiddify_sync::v1::RosterUpdate& chunk);
  void Reset();

  bool active() const { return chunk_count_ != 0; }
  bool complete() const { return active() && next_chunk_ >= chunk_count_; }
  uint64_t version() const { return version_; }
  uint64_t epoch() const { return epoch_; }
  uint32_t next_chunk() const { return next_chunk_; }
  uint32_t chunk_count() const { return chunk_count_; }
  // Lower-case uuids of every user the applied chunks carried.
  const absl::flat_hash_set<std::string>& present() const { return present_; }
  uint64_t users() const { return present_.size(); }

 private:
  uint64_t version_ = 0;
  uint64_t epoch_ = 0;
  uint32_t next_chunk_ = 0;
  uint32_t chunk_count_ = 0;
  absl::flat_hash_set<std::string> present_;
};

}  // namespace hsync::reporter
