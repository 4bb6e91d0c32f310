#include "hub/parent/panel_user_list_parser.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "hub/parent/panel_user_json.h"

namespace hsync::hub {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

constexpr size_t kHeadKept = 200;
// No user object of the panel comes near this.
constexpr size_t kMaxElementBytes = size_t{1} << 20;

}  // namespace

absl::Status PanelUserListParser::Fail(std::string message) {
  status_ = absl::DataLossError(std::move(message));
  return status_;
}

absl::Status PanelUserListParser::Feed(std::string_view piece) {
  if (!status_.ok()) return status_;
  for (size_t i = 0; i < piece.size(); ++i) {
    const char c = piece[i];
    switch (state_) {
      case State::kBeforeArray:
        if (IsSpace(c)) continue;
        if (c == '[') {
          state_ = State::kBetween;
          expect_element_ = true;
          continue;
        }
        state_ = State::kNotArray;
        [[fallthrough]];
      case State::kNotArray: {
        // Kept only for the message of Finish.
        const size_t take = std::min(piece.size() - i, kHeadKept - std::min(kHeadKept, head_.size()));
        head_.append(piece.substr(i, take));
        return absl::OkStatus();
      }
      case State::kBetween:
        if (IsSpace(c)) continue;
        if (c == ']' && expect_element_ && index_ == 0) {
          state_ = State::kAfterArray;
          continue;
        }
        if (c == ']' && !expect_element_) {
          state_ = State::kAfterArray;
          continue;
        }
        if (c == ',' && !expect_element_) {
          expect_element_ = true;
          continue;
        }
        if (!expect_element_ || c == ',' || c == ']') {
          return Fail(absl::StrCat("parent user list: malformed JSON array near element ", index_));
        }
        state_ = State::kInElement;
        element_.clear();
        depth_ = 0;
        in_string_ = false;
        escaped_ = false;
        [[fallthrough]];
      case State::kInElement:
        if (in_string_) {
          if (escaped_) {
            escaped_ = false;
          } else if (c == '\\') {
            escaped_ = true;
          } else if (c == '"') {
            in_string_ = false;
          }
          element_.push_back(c);
          continue;
        }
        if (depth_ == 0 && (c == ',' || c == ']')) {
          if (absl::Status ended = EndElement(); !ended.ok()) return ended;
          if (c == ']') {
            state_ = State::kAfterArray;
          } else {
            state_ = State::kBetween;
            expect_element_ = true;
          }
          continue;
        }
        if (c == '"') in_string_ = true;
        if (c == '{' || c == '[') ++depth_;
        if (c == '}' || c == ']') --depth_;
        if (depth_ < 0) return Fail(absl::StrCat("parent user list: malformed element ", index_));
        element_.push_back(c);
        if (element_.size() > kMaxElementBytes) {
          return Fail(absl::StrCat("parent user list: element ", index_, " is larger than ",
                                   kMaxElementBytes, " bytes"));
        }
        continue;
      case State::kAfterArray:
        if (IsSpace(c)) continue;
        return Fail("parent user list: data after the end of the JSON array");
    }
  }
  return absl::OkStatus();
}

absl::Status PanelUserListParser::EndElement() {
  const size_t index = index_++;
  absl::StatusOr<ListElement> element = ParsePanelUserListElement(element_, index);
  std::string().swap(element_);
  if (!element.ok()) return Fail(std::string(element.status().message()));
  expect_element_ = false;
  if (element->user.has_value()) {
    on_user_(*std::move(element->user));
  } else {
    skipped_.push_back(std::move(element->skipped));
  }
  return absl::OkStatus();
}

absl::Status PanelUserListParser::Finish() {
  if (!status_.ok()) return status_;
  switch (state_) {
    case State::kAfterArray:
      return absl::OkStatus();
    case State::kNotArray:
      return Fail(std::string(ParsePanelUserListHead(head_).message()));
    case State::kBeforeArray:
      return Fail("parent answered an empty body where a JSON array of users was expected");
    default:
      return Fail(absl::StrCat("parent user list: the JSON array breaks off after ", index_,
                               " elements"));
  }
}

}  // namespace hsync::hub
