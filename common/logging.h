// Logging to stderr; under systemd (JOURNAL_STREAM set) lines carry sd-daemon
// priority prefixes so journald records their level. Thread-safe.
// Never pass a secret (token, API key, password) to these functions.
#pragma once

#include <string_view>

namespace hsync {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below `level` are dropped. Default kInfo.
void SetLogLevel(LogLevel level);
// Parses "debug" | "info" | "warning" | "error".
bool ParseLogLevel(std::string_view text, LogLevel* out);

void Log(LogLevel level, std::string_view message);
inline void LogDebug(std::string_view m) { Log(LogLevel::kDebug, m); }
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(std::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }

}  // namespace hsync
