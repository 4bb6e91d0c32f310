// The hub's operator socket: a unix socket (default
// /run/hiddify-sync/hub.sock) on which the hub serves the same gRPC services
// as on its TCP port, for `hiddify-sync-hub status` and grpcurl -unix. Only
// root may use it: the socket is mode 0600 and a directory the hub creates
// for it is mode 0700. Calls on it may read GetStatus/GetRoster without a
// node token (sync_hub_service.h); reports and roster streams still need one.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace hsync::hub {

// Before the server binds `path`: creates its directory (mode 0700, parents
// as needed) when missing, and removes a stale socket left by a hub that
// died. FailedPrecondition, naming the path and the reason, when the
// directory cannot be created, when something other than a socket is in
// the way, or when a live hub still answers on it.
absl::Status PrepareOperatorSocket(const std::string& path);

// After the server bound `path`: sets the socket's mode to 0600 (owner only)
// and returns its inode (for RemoveOperatorSocket).
absl::StatusOr<ino_t> RestrictOperatorSocket(const std::string& path);

// At shutdown: removes `path` if it still is the socket with inode `inode`
// (never one a newer hub created since).
void RemoveOperatorSocket(const std::string& path, ino_t inode);

}  // namespace hsync::hub
