// Errors the panel answers, in its two shapes (PANEL.md §1 "Errors").
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace hsync::panelsim {

struct ApiError {
  enum class Kind {
    kAbort,      // abort(status, message): body shape chosen by the Accept header
    kException,  // unhandled exception: 500 {"msg": text} whatever the Accept header
  };
  Kind kind = Kind::kAbort;
  int status = 500;
  std::string message;
  nlohmann::json detail = nlohmann::json::object();

  static ApiError Abort(int status, std::string message,
                        nlohmann::json detail = nlohmann::json::object()) {
    return ApiError{Kind::kAbort, status, std::move(message), std::move(detail)};
  }
  static ApiError Exception(std::string text) {
    return ApiError{Kind::kException, 500, std::move(text), nlohmann::json::object()};
  }
};

// Whether the Accept header admits text/html (as werkzeug's accept_html does:
// "*/*", "text/*", "text/html", "application/xhtml+xml", "application/*").
bool AcceptsHtml(const std::string& accept_header);

// The body of `error` for a request with `accept_header`:
// abort + HTML accepted -> {"msg": message}; abort otherwise ->
// {"detail": detail, "message": message}; exception -> {"msg": text}.
std::string ErrorBody(const ApiError& error, const std::string& accept_header);

}  // namespace hsync::panelsim
