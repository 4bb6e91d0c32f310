#include "hub/apply/patch_budget.h"

#include <algorithm>
#include <limits>

namespace hsync::hub {
namespace {

constexpr absl::Duration kWindow = absl::Seconds(60);
constexpr absl::Duration kSlice = absl::Seconds(10);
constexpr uint32_t kSlicesPerWindow = 6;

}  // namespace

PatchBudget::PatchBudget(uint32_t per_minute)
    : per_minute_(per_minute), per_slice_((per_minute + kSlicesPerWindow - 1) / kSlicesPerWindow) {}

void PatchBudget::Expire(absl::Time now) {
  while (!taken_.empty() && now - taken_.front() >= kWindow) taken_.pop_front();
}

size_t PatchBudget::Available(absl::Time now) {
  if (unlimited()) return std::numeric_limits<size_t>::max();
  Expire(now);
  const size_t in_window = taken_.size();
  // taken_ is sorted: count the writes of the last slice from the back.
  size_t in_slice = 0;
  for (auto it = taken_.rbegin(); it != taken_.rend() && now - *it < kSlice; ++it) ++in_slice;
  const size_t window_left = per_minute_ > in_window ? per_minute_ - in_window : 0;
  const size_t slice_left = per_slice_ > in_slice ? per_slice_ - in_slice : 0;
  return std::min(window_left, slice_left);
}

bool PatchBudget::TryTake(absl::Time now) {
  if (!unlimited() && Available(now) == 0) return false;
  Expire(now);
  taken_.push_back(now);
  return true;
}

size_t PatchBudget::TakenLastMinute(absl::Time now) {
  Expire(now);
  return taken_.size();
}

}  // namespace hsync::hub
