#include "hub/journal/journal_report_hash.h"

#include <openssl/sha.h>

#include <cstdint>

namespace hsync::hub {
namespace {

// Little-endian, fixed width: the encoding does not depend on the host.
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A presence byte, then seconds and nanos; absent and the epoch differ.
void PutTimestamp(std::string& out, bool present, const google::protobuf::Timestamp& t) {
  out.push_back(present ? 1 : 0);
  if (!present) return;
  PutU64(out, static_cast<uint64_t>(t.seconds()));
  PutU64(out, static_cast<uint64_t>(static_cast<int64_t>(t.nanos())));
}

}  // namespace

std::string ReportContentHash(const hiddify_sync::v1::UsageReport& report) {
  std::string encoded;
  encoded.reserve(16 + static_cast<size_t>(report.usages_size()) * 72);
  PutU64(encoded, static_cast<uint64_t>(report.usages_size()));
  for (const auto& usage : report.usages()) {
    PutU64(encoded, usage.uuid().size());  // length-prefixed: no two lists encode alike
    encoded.append(usage.uuid());
    PutU64(encoded, usage.bytes());
    PutTimestamp(encoded, usage.has_last_online(), usage.last_online());
  }
  PutTimestamp(encoded, report.has_collected_at(), report.collected_at());
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

}  // namespace hsync::hub
