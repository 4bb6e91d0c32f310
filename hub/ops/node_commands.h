// The node enrolment subcommands of hiddify-sync-hub, on the config file:
//   add-node NAME [--config PATH]     new random token (32 bytes from
//       /dev/urandom, base64url), printed once on stdout with what to do with
//       it; only `NAME = "sha256:<hex>"` is written under [nodes]
//   remove-node NAME [--config PATH]  deletes the node's line (revokes it)
//   list-nodes [--config PATH]        node names, one a line
// The file is edited as text (comments and order kept, node_config_edit.h)
// and replaced atomically, under an exclusive lock on its directory so that
// two edits never interleave. The running hub sees changes after SIGHUP
// (systemctl reload hiddify-sync-hub). Exit code 0, or 1 with a message on
// stderr; the token never appears in the file, a message or stderr.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace hsync::hub {

// `command` is "add-node", "remove-node" or "list-nodes"; `args` the words after it.
int RunNodeCommand(const std::string& command, const std::vector<std::string>& args,
                   std::ostream& out, std::ostream& err);

}  // namespace hsync::hub
