#include "tests/panelsim/api_error.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/panelsim/py_json.h"

namespace hsync::panelsim {

bool AcceptsHtml(const std::string& accept_header) {
  for (absl::string_view item : absl::StrSplit(accept_header, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ';');
    const std::string type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
    bool zero_quality = false;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view param = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&param, "q=")) {
        zero_quality = param == "0" || param == "0.0" || param == "0.00" || param == "0.000";
      }
    }
    if (zero_quality) continue;
    if (type == "*/*" || type == "text/*" || type == "text/html" || type == "application/*" ||
        type == "application/xhtml+xml") {
      return true;
    }
  }
  return false;
}

std::string ErrorBody(const ApiError& error, const std::string& accept_header) {
  if (error.kind == ApiError::Kind::kException || AcceptsHtml(accept_header)) {
    return PyDumps(nlohmann::json{{"msg", error.message}});
  }
  return PyDumps(nlohmann::json{{"detail", error.detail}, {"message", error.message}});
}

}  // namespace hsync::panelsim
