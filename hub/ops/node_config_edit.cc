#include "hub/ops/node_config_edit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config_reader.h"
#include "hub/service/node_auth.h"

namespace hsync::hub {
namespace {

// This abseil's string_view is its own type.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// "[name]" (optionally spaced, optionally with a trailing comment) -> name;
// "" for any other line. "[[x]]" (arrays of tables) counts as a header too.
std::string TableHeader(std::string_view line) {
  absl::string_view s = absl::StripAsciiWhitespace(Av(line));
  if (s.empty() || s.front() != '[') return "";
  const size_t close = s.rfind(']');
  if (close == absl::string_view::npos) return "";
  absl::string_view rest = absl::StripAsciiWhitespace(s.substr(close + 1));
  if (!rest.empty() && rest.front() != '#') return "";
  absl::string_view name = s.substr(1, close - 1);
  while (!name.empty() && (name.front() == '[' || name.back() == ']')) {
    if (name.front() == '[') name.remove_prefix(1);
    if (!name.empty() && name.back() == ']') name.remove_suffix(1);
  }
  name = absl::StripAsciiWhitespace(name);
  return name.empty() ? std::string(" ") : std::string(name);
}

// The key of a "key = value" line ("" otherwise); quotes around the key removed.
std::string LineKey(std::string_view line) {
  absl::string_view s = absl::StripLeadingAsciiWhitespace(Av(line));
  if (s.empty() || s.front() == '#') return "";
  const size_t eq = s.find('=');
  if (eq == absl::string_view::npos) return "";
  absl::string_view key = absl::StripAsciiWhitespace(s.substr(0, eq));
  if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front()) {
    key = key.substr(1, key.size() - 2);
  }
  return std::string(key);
}

struct NodesSection {
  bool found = false;
  size_t header = 0;  // line index of "[nodes]"
  size_t end = 0;     // first line after the section (next header or line count)
};

NodesSection FindNodesSection(const std::vector<std::string>& lines) {
  NodesSection section;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string header = TableHeader(lines[i]);
    if (header.empty()) continue;
    if (section.found) {
      section.end = i;
      return section;
    }
    if (header == "nodes") {
      section.found = true;
      section.header = i;
    }
  }
  section.end = lines.size();
  return section;
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(Av(text), '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  return lines;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  return lines.empty() ? "" : absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

absl::Status HandEditNeeded(std::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat(Av(why), "; edit [nodes] by hand (one line per node: NAME = \"sha256:...\")"));
}

// The edit must change the [nodes] table exactly as intended.
absl::Status CheckResult(std::string_view new_text, const std::map<std::string, std::string>& want) {
  absl::StatusOr<std::map<std::string, std::string>> got = NodesInConfigText(new_text);
  if (!got.ok()) return HandEditNeeded(absl::StrCat("the edited file would not parse (", got.status().message(), ")"));
  if (*got != want) return HandEditNeeded("the file's [nodes] table is not in a form this command can edit");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> NodesInConfigText(std::string_view text) {
  absl::StatusOr<ConfigReader> reader = ConfigReader::LoadString(text, "config");
  if (!reader.ok()) return absl::InvalidArgumentError(reader.status().message());
  std::map<std::string, std::string> nodes;
  for (const std::string& node_id : reader->TableKeys("nodes")) {
    nodes[node_id] = reader->GetString(absl::StrCat("nodes.", node_id), "");
  }
  if (reader->Has("nodes") && nodes.empty()) {
    // An empty table is fine; a non-table "nodes" is an error Finish() would name.
    absl::Status finish = reader->Finish();
    if (!finish.ok() && finish.message().find("nodes: must be a table") != std::string_view::npos) {
      return absl::InvalidArgumentError("nodes must be a table");
    }
  }
  return nodes;
}

absl::StatusOr<std::string> AddNodeToConfigText(std::string_view text, std::string_view node_id,
                                                std::string_view token_hash) {
  if (!IsValidNodeId(node_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid node name \"", Av(node_id.substr(0, 80)),
                     "\": 1-64 characters of A-Z a-z 0-9 _ -"));
  }
  if (!IsWellFormedTokenHash(token_hash)) return absl::InvalidArgumentError("malformed token hash");
  absl::StatusOr<std::map<std::string, std::string>> nodes = NodesInConfigText(text);
  if (!nodes.ok()) return nodes.status();
  const std::string id(node_id);
  if (nodes->contains(id)) {
    return absl::AlreadyExistsError(absl::StrCat("node \"", id, "\" already exists (remove-node first to give it a new token)"));
  }
  std::vector<std::string> lines = SplitLines(text);
  const NodesSection section = FindNodesSection(lines);
  const std::string new_line = absl::StrCat(id, " = \"", Av(token_hash), "\"");
  if (!section.found) {
    if (!nodes->empty()) return HandEditNeeded("[nodes] is not written as a [nodes] section");
    if (!lines.empty() && !absl::StripAsciiWhitespace(lines.back()).empty()) lines.emplace_back();
    lines.emplace_back("[nodes]");
    lines.push_back(new_line);
  } else {
    // After the section's last non-blank line (its last node or comment).
    size_t insert_at = section.end;
    while (insert_at > section.header + 1 && absl::StripAsciiWhitespace(lines[insert_at - 1]).empty()) {
      --insert_at;
    }
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(insert_at), new_line);
  }
  std::string result = JoinLines(lines);
  std::map<std::string, std::string> want = *nodes;
  want[id] = std::string(token_hash);
  if (absl::Status checked = CheckResult(result, want); !checked.ok()) return checked;
  return result;
}

absl::StatusOr<std::string> RemoveNodeFromConfigText(std::string_view text, std::string_view node_id) {
  absl::StatusOr<std::map<std::string, std::string>> nodes = NodesInConfigText(text);
  if (!nodes.ok()) return nodes.status();
  const std::string id(node_id);
  if (!nodes->contains(id)) {
    return absl::NotFoundError(absl::StrCat("no node \"", id.substr(0, 80), "\" in [nodes]"));
  }
  std::vector<std::string> lines = SplitLines(text);
  const NodesSection section = FindNodesSection(lines);
  if (!section.found) return HandEditNeeded("[nodes] is not written as a [nodes] section");
  bool removed = false;
  for (size_t i = section.header + 1; i < section.end; ++i) {
    if (LineKey(lines[i]) == id) {
      lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i));
      removed = true;
      break;
    }
  }
  if (!removed) return HandEditNeeded(absl::StrCat("no line \"", id, " = ...\" under [nodes]"));
  std::string result = JoinLines(lines);
  std::map<std::string, std::string> want = *nodes;
  want.erase(id);
  if (absl::Status checked = CheckResult(result, want); !checked.ok()) return checked;
  return result;
}

absl::Status ReplaceFileAtomically(const std::string& path, std::string_view content) {
  const std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  struct stat old_stat {};
  const bool existed = ::stat(path.c_str(), &old_stat) == 0;
  std::string temp = (dir / absl::StrCat(".", target.filename().string(), ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create a temp file in ", dir.string(), ": ", std::strerror(errno)));
  }
  auto fail = [&](std::string_view what) {
    const std::string message = absl::StrCat(Av(what), " ", temp, ": ", std::strerror(errno));
    ::close(fd);
    ::unlink(temp.c_str());
    return absl::InternalError(message);
  };
  const mode_t mode = existed ? (old_stat.st_mode & 07777) : 0600;
  if (::fchmod(fd, mode) != 0) return fail("cannot chmod");
  if (existed && (old_stat.st_uid != ::geteuid() || old_stat.st_gid != ::getegid())) {
    if (::fchown(fd, old_stat.st_uid, old_stat.st_gid) != 0) return fail("cannot chown");
  }
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    return absl::InternalError(absl::StrCat("cannot close ", temp));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string message = absl::StrCat("cannot rename ", temp, " to ", path, ": ", std::strerror(errno));
    ::unlink(temp.c_str());
    return absl::InternalError(message);
  }
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace hsync::hub
