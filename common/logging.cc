#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace hsync {
namespace {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_write_mutex;

// journald understands sd-daemon "<N>" prefixes on stderr lines.
const char* SdPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "<7>";
    case LogLevel::kInfo: return "<6>";
    case LogLevel::kWarning: return "<4>";
    case LogLevel::kError: return "<3>";
  }
  return "<6>";
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

bool UnderJournal() {
  static const bool under_journal = std::getenv("JOURNAL_STREAM") != nullptr;
  return under_journal;
}

// Writes all of `line`, retrying on partial writes and EINTR.
void WriteAll(const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // nowhere left to report a logging failure
    }
  }
}

}  // namespace

void SetLogLevel(LogLevel level) { g_min_level.store(static_cast<int>(level)); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug") {
    *out = LogLevel::kDebug;
  } else if (text == "info") {
    *out = LogLevel::kInfo;
  } else if (text == "warning") {
    *out = LogLevel::kWarning;
  } else if (text == "error") {
    *out = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

void Log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) < g_min_level.load()) return;
  // One line per call: embedded newlines would split a record in journald.
  std::string body(message);
  for (char& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string line;
  if (UnderJournal()) {
    line = absl::StrCat(SdPriority(level), body, "\n");
  } else {
    line = absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
                        " ", LevelName(level), " ", body, "\n");
  }
  std::lock_guard<std::mutex> lock(g_write_mutex);
  WriteAll(line);
}

}  // namespace hsync
