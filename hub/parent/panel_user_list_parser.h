// Parses the list route's JSON array (PANEL.md §1) as it arrives, piece by
// piece (libcurl's write callback): each element is cut out of the stream
// and parsed on its own, so memory is proportional to one user, not to the
// list. Every element goes to `on_user` (read) or into skipped() (left out,
// with its reason: ParsePanelUserList's rules). A body that is not a JSON
// array, or breaks off, is DataLoss — from Feed or Finish — and the caller
// must then discard what it was given (nothing is final before Finish is ok).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "hiddify_sync/v1/sync.pb.h"
#include "hub/parent/parent_client.h"

namespace hsync::hub {

class PanelUserListParser {
 public:
  explicit PanelUserListParser(std::function<void(hiddify_sync::v1::User)> on_user)
      : on_user_(std::move(on_user)) {}

  // The next piece of the body. After an error, further pieces are ignored.
  absl::Status Feed(std::string_view piece);
  // The body is complete: OK only when it was one whole JSON array.
  absl::Status Finish();

  const std::vector<SkippedPanelUser>& skipped() const { return skipped_; }
  std::vector<SkippedPanelUser> TakeSkipped() { return std::move(skipped_); }
  size_t elements() const { return index_; }

 private:
  enum class State { kBeforeArray, kBetween, kInElement, kAfterArray, kNotArray };
  absl::Status EndElement();
  absl::Status Fail(std::string message);

  std::function<void(hiddify_sync::v1::User)> on_user_;
  std::vector<SkippedPanelUser> skipped_;
  State state_ = State::kBeforeArray;
  absl::Status status_;
  std::string element_;   // the element being cut out
  std::string head_;      // the start of a body that is not an array (for the message)
  size_t index_ = 0;      // elements seen
  int depth_ = 0;         // of brackets inside the element
  bool in_string_ = false;
  bool escaped_ = false;
  bool expect_element_ = true;  // after '[' or ','
};

}  // namespace hsync::hub
