// The operator subcommands of hiddify-sync-hub (everything but running the
// daemon): status, add-node, remove-node, list-nodes.
#pragma once

#include <optional>

namespace hsync::hub {

// When argv[1] names a subcommand, runs it and returns its exit code;
// otherwise nullopt (the caller runs the daemon).
std::optional<int> RunHubSubcommand(int argc, char** argv);

}  // namespace hsync::hub
