#include "common/host_port.h"

#include "absl/strings/numbers.h"

namespace hsync {

bool SplitHostPort(std::string_view address, std::string* host, int* port) {
  std::string_view host_part;
  std::string_view port_part;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return false;
    }
    host_part = address.substr(1, close - 1);
    port_part = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return false;
    host_part = address.substr(0, colon);
    port_part = address.substr(colon + 1);
    if (host_part.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
  }
  int value = 0;
  if (host_part.empty() || port_part.empty() || port_part.size() > 5 ||
      !absl::SimpleAtoi(absl::string_view(port_part.data(), port_part.size()), &value) ||
      value < 0 || value > 65535) {
    return false;
  }
  for (char c : port_part) {
    if (c < '0' || c > '9') return false;
  }
  *host = std::string(host_part);
  *port = value;
  return true;
}

}  // namespace hsync
