#include "hub/ops/node_commands.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "hub/config/hub_config.h"
#include "hub/service/node_auth.h"
#include "hub/ops/node_config_edit.h"

namespace hsync::hub {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr size_t kTokenBytes = 32;

absl::StatusOr<std::string> RandomToken() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string raw(kTokenBytes, '\0');
  if (!urandom.read(raw.data(), static_cast<std::streamsize>(raw.size()))) {
    return absl::UnavailableError("cannot read /dev/urandom");
  }
  return absl::WebSafeBase64Escape(raw);  // base64url, no padding: 43 characters
}

absl::StatusOr<std::string> ReadConfigText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// An exclusive flock on the config's directory, held for the whole
// read-edit-replace (the file itself is replaced, so it cannot carry the lock).
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& config_path) {
    std::filesystem::path dir = std::filesystem::path(config_path).parent_path();
    if (dir.empty()) dir = ".";
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

struct NodeArgs {
  std::string config_path = kDefaultHubConfigPath;
  std::vector<std::string> names;
};

bool ParseArgs(const std::vector<std::string>& args, NodeArgs* parsed, std::string* error) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) {
        *error = "--config needs a path";
        return false;
      }
      parsed->config_path = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      parsed->config_path = args[i].substr(9);
    } else if (!args[i].empty() && args[i][0] == '-') {
      *error = absl::StrCat("unknown option \"", args[i], "\"");
      return false;
    } else {
      parsed->names.push_back(args[i]);
    }
  }
  return true;
}

int AddNode(const std::string& name, const std::string& path, std::ostream& out, std::ostream& err) {
  if (!IsValidNodeId(name)) {
    err << "hiddify-sync-hub add-node: invalid node name \"" << name.substr(0, 80)
        << "\": use 1-64 characters of A-Z a-z 0-9 _ -\n";
    return kExitFailed;
  }
  DirectoryLock lock(path);
  absl::StatusOr<std::string> text = ReadConfigText(path);
  if (!text.ok()) {
    err << "hiddify-sync-hub add-node: " << text.status().message() << "\n";
    return kExitFailed;
  }
  absl::StatusOr<std::string> token = RandomToken();
  if (!token.ok()) {
    err << "hiddify-sync-hub add-node: " << token.status().message() << "\n";
    return kExitFailed;
  }
  absl::StatusOr<std::string> edited = AddNodeToConfigText(*text, name, TokenHash(*token));
  if (!edited.ok()) {
    err << "hiddify-sync-hub add-node: " << path << ": " << edited.status().message() << "\n";
    return kExitFailed;
  }
  if (absl::Status replaced = ReplaceFileAtomically(path, *edited); !replaced.ok()) {
    err << "hiddify-sync-hub add-node: " << replaced.message() << "\n";
    return kExitFailed;
  }
  out << "Node \"" << name << "\" added to " << path << " (only the token's hash is stored).\n"
      << "Its token, shown this once (a lost token cannot be recovered: remove-node and add-node again):\n\n"
      << "  " << *token << "\n\n"
      << "Next:\n"
      << "  1. on the child, put the token into /etc/hiddify-sync/hub-token (one line, mode 0600)\n"
      << "     and set node_id = \"" << name << "\" in /etc/hiddify-sync/reporter.toml;\n"
      << "  2. here, reload the hub: systemctl reload hiddify-sync-hub (other nodes stay connected).\n";
  return kExitOk;
}

int RemoveNode(const std::string& name, const std::string& path, std::ostream& out, std::ostream& err) {
  DirectoryLock lock(path);
  absl::StatusOr<std::string> text = ReadConfigText(path);
  if (!text.ok()) {
    err << "hiddify-sync-hub remove-node: " << text.status().message() << "\n";
    return kExitFailed;
  }
  absl::StatusOr<std::string> edited = RemoveNodeFromConfigText(*text, name);
  if (!edited.ok()) {
    err << "hiddify-sync-hub remove-node: " << path << ": " << edited.status().message() << "\n";
    return kExitFailed;
  }
  if (absl::Status replaced = ReplaceFileAtomically(path, *edited); !replaced.ok()) {
    err << "hiddify-sync-hub remove-node: " << replaced.message() << "\n";
    return kExitFailed;
  }
  out << "Node \"" << name << "\" removed from " << path << ".\n"
      << "Reload the hub to revoke it now: systemctl reload hiddify-sync-hub\n";
  return kExitOk;
}

int ListNodes(const std::string& path, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::string> text = ReadConfigText(path);
  if (!text.ok()) {
    err << "hiddify-sync-hub list-nodes: " << text.status().message() << "\n";
    return kExitFailed;
  }
  absl::StatusOr<std::map<std::string, std::string>> nodes = NodesInConfigText(*text);
  if (!nodes.ok()) {
    err << "hiddify-sync-hub list-nodes: " << path << ": " << nodes.status().message() << "\n";
    return kExitFailed;
  }
  for (const auto& [name, hash] : *nodes) out << name << "\n";
  return kExitOk;
}

}  // namespace

int RunNodeCommand(const std::string& command, const std::vector<std::string>& args,
                   std::ostream& out, std::ostream& err) {
  NodeArgs parsed;
  std::string error;
  const bool takes_name = command != "list-nodes";
  if (!ParseArgs(args, &parsed, &error) || parsed.names.size() != (takes_name ? 1u : 0u)) {
    if (error.empty()) error = takes_name ? "needs exactly one NAME" : "takes no NAME";
    err << "hiddify-sync-hub " << command << ": " << error << "\n"
        << "usage: hiddify-sync-hub " << command << (takes_name ? " NAME" : "")
        << " [--config PATH]\n";
    return kExitFailed;
  }
  if (command == "add-node") return AddNode(parsed.names[0], parsed.config_path, out, err);
  if (command == "remove-node") return RemoveNode(parsed.names[0], parsed.config_path, out, err);
  return ListNodes(parsed.config_path, out, err);
}

}  // namespace hsync::hub
