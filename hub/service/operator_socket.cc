#include "hub/service/operator_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace hsync::hub {
namespace {

absl::Status Refused(const std::string& path, absl::string_view reason) {
  return absl::FailedPreconditionError(absl::StrCat("operator_socket ", path, ": ", reason));
}

// Creates `dir` and missing parents; the directories created get mode 0700.
absl::Status MakeDirectory(const std::string& path, const std::filesystem::path& dir) {
  if (dir.empty() || dir == dir.root_path()) return absl::OkStatus();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Refused(path, absl::StrCat(dir.string(), " is not a directory"));
    return absl::OkStatus();
  }
  if (errno != ENOENT) {
    return Refused(path, absl::StrCat("cannot look at directory ", dir.string(), ": ",
                                      std::strerror(errno)));
  }
  if (absl::Status parent = MakeDirectory(path, dir.parent_path()); !parent.ok()) return parent;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Refused(path, absl::StrCat("cannot create directory ", dir.string(), ": ",
                                      std::strerror(errno),
                                      " (under systemd the unit's RuntimeDirectory= provides it)"));
  }
  ::chmod(dir.c_str(), 0700);  // mkdir's mode went through the umask
  return absl::OkStatus();
}

// True when something accepts connections on the unix socket `path`.
bool SomeoneListens(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), std::min(path.size(), sizeof(address.sun_path) - 1));
  const bool connected =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

}  // namespace

absl::Status PrepareOperatorSocket(const std::string& path) {
  const std::filesystem::path socket_path(path);
  if (absl::Status dir = MakeDirectory(path, socket_path.parent_path()); !dir.ok()) return dir;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Refused(path, std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Refused(path, "exists and is not a socket; remove it or choose another path");
  }
  if (SomeoneListens(path)) {
    return Refused(path, "another hub is serving on it (two hubs with one config?)");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Refused(path, absl::StrCat("cannot remove the stale socket: ", std::strerror(errno)));
  }
  LogInfo(absl::StrCat("operator_socket ", path, ": removed a stale socket"));
  return absl::OkStatus();
}

absl::StatusOr<ino_t> RestrictOperatorSocket(const std::string& path) {
  if (::chmod(path.c_str(), 0600) != 0) {
    return Refused(path, absl::StrCat("cannot set mode 0600: ", std::strerror(errno)));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Refused(path, std::strerror(errno));
  return st.st_ino;
}

void RemoveOperatorSocket(const std::string& path, ino_t inode) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == inode) {
    ::unlink(path.c_str());
  }
}

}  // namespace hsync::hub
