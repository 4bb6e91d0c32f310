// `hiddify-sync-hub status [--config PATH] [--socket PATH]
//  [--address HOST:PORT --token-file FILE] [--ca FILE] [--cert FILE --key FILE]
//  [--timeout DURATION]`: asks the running hub's GetStatus and prints a
// summary (status_summary.h).
//
// Where, by default: the hub's operator socket (the config's operator_socket,
// or --socket), a root-only unix socket on which no token is needed. A
// missing socket ("is the hub running?") and a socket this user may not open
// ("run as root") are told apart, each with what to do.
//
// --address HOST:PORT asks over TCP instead, like a reporter: every TCP call
// needs a node token (--token-file, a file holding one node's token, as on a
// child), loopback included. TLS, unless `plaintext`: the server certificate
// is checked against the config's tls.cert_file itself, tls.client_ca_file, a
// ca.pem next to the cert_file and --ca, and (for a loopback address) the name
// "localhost", which make-certs.sh puts into every hub certificate. A hub with
// require_client_cert needs --cert/--key (e.g. a make-certs.sh client pair).
//
// Exit code: 0 healthy, 1 degraded, 2 down (not reachable, refused, or the
// config cannot be read).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace hsync::hub {

// `args` are the words after "status". Returns the exit code.
int RunHubStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace hsync::hub
