#include "reporter/roster/full_roster_assembly.h"

#include "absl/strings/ascii.h"

namespace hsync::reporter {

FullRosterAssembly::Step FullRosterAssembly::Accept(const hiddify_sync::v1::RosterUpdate& chunk) {
  if (chunk.chunk_count() == 0 || chunk.chunk_index() >= chunk.chunk_count()) {
    return Step::kOutOfOrder;
  }
  if (chunk.chunk_index() == 0) {
    Reset();
    version_ = chunk.version();
    epoch_ = chunk.roster_epoch();
    chunk_count_ = chunk.chunk_count();
    return Step::kBegin;
  }
  if (active() && chunk.version() == version_ && chunk.roster_epoch() == epoch_ &&
      chunk.chunk_count() == chunk_count_ && chunk.chunk_index() == next_chunk_) {
    return Step::kContinue;
  }
  return Step::kOutOfOrder;
}

void FullRosterAssembly::Applied(const hiddify_sync::v1::RosterUpdate& chunk) {
  for (const auto& user : chunk.upserts()) present_.insert(absl::AsciiStrToLower(user.uuid()));
  ++next_chunk_;
}

void FullRosterAssembly::Reset() {
  version_ = 0;
  epoch_ = 0;
  next_chunk_ = 0;
  chunk_count_ = 0;
  absl::flat_hash_set<std::string>().swap(present_);
}

}  // namespace hsync::reporter
