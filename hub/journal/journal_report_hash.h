// The fingerprint the journal keeps of every accepted report, to tell an
// honest resend (same content) from a reporter whose state was rolled back
// (same stream and seq, different content).
#pragma once

#include <string>

#include "hiddify_sync/v1/sync.pb.h"

namespace hsync::hub {

// SHA-256 (32 raw bytes) of a fixed encoding of the report's content: every
// usage in order (uuid, bytes, last_online) and collected_at. node_id,
// stream_id and seq are left out (they are the key it is stored under).
// Independent of protobuf's wire encoding, so it stays the same across
// library versions and for equal messages serialized differently.
std::string ReportContentHash(const hiddify_sync::v1::UsageReport& report);

}  // namespace hsync::hub
