// "host:port" / "[v6]:port" addresses as the config files write them.
#pragma once

#include <string>
#include <string_view>

namespace hsync {

// Splits `address` into host (without brackets) and port (0-65535). False
// when malformed: no port, empty host, a bare IPv6 host without brackets.
bool SplitHostPort(std::string_view address, std::string* host, int* port);

}  // namespace hsync
