// Really breaking a client's TCP connection from inside a request handler:
// finds this process's socket whose local and peer ports are the request's,
// sets SO_LINGER 0 and shuts it down, so the client sees the connection
// reset/closed with no answer at all.
#pragma once

namespace hsync::panelsim {

// Returns false if no such socket was found.
bool DropConnection(int local_port, int remote_port);

}  // namespace hsync::panelsim
