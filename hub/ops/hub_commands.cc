#include "hub/ops/hub_commands.h"

#include <iostream>
#include <string>
#include <vector>

#include "hub/ops/node_commands.h"
#include "hub/ops/status_command.h"

namespace hsync::hub {

std::optional<int> RunHubSubcommand(int argc, char** argv) {
  if (argc < 2) return std::nullopt;
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "status") return RunHubStatusCommand(args, std::cout, std::cerr);
  if (command == "add-node" || command == "remove-node" || command == "list-nodes") {
    return RunNodeCommand(command, args, std::cout, std::cerr);
  }
  return std::nullopt;
}

}  // namespace hsync::hub
