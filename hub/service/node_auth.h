// Who is calling: maps the `authorization: Bearer <token>` of a gRPC call to
// the node id whose token hash ("sha256:<hex>") the hub config holds. The hub
// never stores tokens, only their hashes; the presented token is hashed and
// compared with every configured hash in constant time. Thread-safe; the
// node table can be replaced while calls run (config reload).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace hsync::hub {

// "sha256:" + 64 lower-case hex digits of SHA-256(token).
std::string TokenHash(std::string_view token);
// True for "sha256:" followed by exactly 64 hex digits (either case).
bool IsWellFormedTokenHash(std::string_view hash);
// Node ids: 1-64 characters of [A-Za-z0-9_-] (no dots: they are TOML keys).
bool IsValidNodeId(std::string_view node_id);
// True when a gRPC peer string ("ipv4:127.0.0.1:5", "ipv6:[::1]:5",
// "ipv6:[::ffff:127.0.0.1]:5", "unix:...") is on this host. Informational
// only: a loopback TCP peer may be a local forwarder (haproxy) relaying
// anyone, so nothing is ever granted for it.
bool IsLoopbackPeer(std::string_view peer);
// True when the call came in over a unix socket (peer "unix:..."): on the hub
// that is only the root-only operator socket.
bool IsUnixSocketPeer(std::string_view peer);

class NodeAuthenticator {
 public:
  // `node_token_hashes`: node_id -> well-formed token hash (checked by the config).
  explicit NodeAuthenticator(const std::map<std::string, std::string>& node_token_hashes);

  // Replaces the node table; calls already authenticated are not affected.
  void Replace(const std::map<std::string, std::string>& node_token_hashes);

  // `authorization` is the metadata value, "Bearer <token>" (scheme
  // case-insensitive). Returns the node id; Unauthenticated when the header is
  // missing (empty), malformed or the token matches no node. Messages never
  // contain the token.
  absl::StatusOr<std::string> Authenticate(std::string_view authorization) const;

  std::vector<std::string> NodeIds() const;

 private:
  struct Entry {
    std::string node_id;
    std::array<uint8_t, 32> digest;
  };
  static std::vector<Entry> BuildTable(const std::map<std::string, std::string>& hashes);

  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hsync::hub
