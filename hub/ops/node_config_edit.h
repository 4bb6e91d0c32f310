// Editing the [nodes] table of the hub's TOML config as text, so that the
// operator's comments, order and every other line stay exactly as they were
// (add-node / remove-node / list-nodes). Each edit is checked by parsing the
// result again: the [nodes] table must be the old one plus (or minus) exactly
// the one node, otherwise the edit is refused and nothing is written.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hsync::hub {

// node id -> value of every key under [nodes] (parsed as TOML). InvalidArgument
// when the text is not valid TOML or `nodes` is not a table.
absl::StatusOr<std::map<std::string, std::string>> NodesInConfigText(std::string_view text);

// The text with `node_id = "<hash>"` appended to the [nodes] table (after its
// last non-blank line; a [nodes] header is appended at the end when there is
// none). InvalidArgument for an invalid node id or hash; AlreadyExists when the
// node is configured; FailedPrecondition when [nodes] is written in a form this
// edit does not handle (inline table, dotted keys): edit the file by hand then.
absl::StatusOr<std::string> AddNodeToConfigText(std::string_view text, std::string_view node_id,
                                                std::string_view token_hash);

// The text without the node's line. NotFound when it is not configured;
// FailedPrecondition as above.
absl::StatusOr<std::string> RemoveNodeFromConfigText(std::string_view text, std::string_view node_id);

// Replaces `path` with `content` atomically: a temp file in the same
// directory with the original's mode (0600 for a new file) and owner, written,
// fsync'ed, renamed over `path`, directory fsync'ed. A crash leaves either the
// old or the new file, never a mix.
absl::Status ReplaceFileAtomically(const std::string& path, std::string_view content);

}  // namespace hsync::hub
