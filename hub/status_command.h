// `hiddify-sync-hub status [--config PATH] [--address HOST:PORT] [--ca FILE]
//  [--cert FILE --key FILE] [--timeout DURATION]`: asks the running hub's
// GetStatus over its own listen address and prints a summary (status_summary.h).
//
// Where: the config's `listen`, with a wildcard host (0.0.0.0, ::) replaced by
// 127.0.0.1; from this host no token is needed (the hub lets loopback callers
// read the status). TLS, unless `plaintext`: the server certificate is checked
// against the config's tls.cert_file itself, tls.client_ca_file, a ca.pem next
// to the cert_file and --ca, and (for a loopback address) the name
// "localhost", which make-certs.sh puts into every hub certificate. A hub with
// require_client_cert needs --cert/--key (e.g. a make-certs.sh client pair).
//
// Exit code: 0 healthy, 1 degraded, 2 down (not reachable, or the config
// cannot be read).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace hsync::hub {

// `args` are the words after "status". Returns the exit code.
int RunHubStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace hsync::hub
