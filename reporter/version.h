// The reporter's version string (from the CMake project version).
#pragma once

namespace hsync::reporter {

#ifdef HSYNC_VERSION
inline constexpr char kReporterVersion[] = HSYNC_VERSION;
#else
inline constexpr char kReporterVersion[] = "0.0.0-dev";
#endif

}  // namespace hsync::reporter
