#include "hub/service/node_auth.h"

#include <openssl/sha.h>

#include <cctype>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace hsync::hub {
namespace {

constexpr std::string_view kHashPrefix = "sha256:";

std::array<uint8_t, 32> Sha256(std::string_view data) {
  std::array<uint8_t, 32> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Compares two digests without an early exit, so timing says nothing about
// how many leading bytes matched.
bool ConstantTimeEqual(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b) {
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

bool IsLoopbackIpv4(std::string_view address) {
  std::vector<std::string> parts = absl::StrSplit(absl::string_view(address.data(), address.size()), '.');
  if (parts.size() != 4) return false;
  for (const std::string& part : parts) {
    int value = 0;
    if (part.empty() || part.size() > 3 || !absl::SimpleAtoi(part, &value) || value > 255) {
      return false;
    }
  }
  return parts[0] == "127";
}

}  // namespace

std::string TokenHash(std::string_view token) {
  const std::array<uint8_t, 32> digest = Sha256(token);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kHashPrefix);
  for (uint8_t byte : digest) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xF]);
  }
  return out;
}

bool IsWellFormedTokenHash(std::string_view hash) {
  if (hash.size() != kHashPrefix.size() + 64 || hash.substr(0, kHashPrefix.size()) != kHashPrefix) {
    return false;
  }
  for (char c : hash.substr(kHashPrefix.size())) {
    if (HexValue(c) < 0) return false;
  }
  return true;
}

bool IsValidNodeId(std::string_view node_id) {
  if (node_id.empty() || node_id.size() > 64) return false;
  for (char c : node_id) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsLoopbackPeer(std::string_view peer) {
  if (peer.substr(0, 5) == "unix:") return true;
  if (peer.substr(0, 5) == "ipv4:") {
    std::string_view rest = peer.substr(5);
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return false;
    return IsLoopbackIpv4(rest.substr(0, colon));
  }
  if (peer.substr(0, 5) == "ipv6:") {
    std::string_view rest = peer.substr(5);
    if (rest.empty() || rest.front() != '[') return false;
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    std::string host(rest.substr(1, close - 1));
    absl::AsciiStrToLower(&host);
    // Drop a zone ("%lo").
    if (size_t percent = host.find('%'); percent != std::string::npos) host.resize(percent);
    if (host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
    if (absl::StartsWith(host, "::ffff:")) return IsLoopbackIpv4(host.substr(7));
    return false;
  }
  return false;
}

bool IsUnixSocketPeer(std::string_view peer) { return peer.substr(0, 5) == "unix:"; }

NodeAuthenticator::NodeAuthenticator(const std::map<std::string, std::string>& node_token_hashes)
    : entries_(BuildTable(node_token_hashes)) {}

void NodeAuthenticator::Replace(const std::map<std::string, std::string>& node_token_hashes) {
  std::vector<Entry> table = BuildTable(node_token_hashes);
  absl::MutexLock lock(&mu_);
  entries_ = std::move(table);
}

std::vector<NodeAuthenticator::Entry> NodeAuthenticator::BuildTable(
    const std::map<std::string, std::string>& hashes) {
  std::vector<Entry> table;
  for (const auto& [node_id, hash] : hashes) {
    if (!IsWellFormedTokenHash(hash)) continue;  // the config refuses these; never match them
    Entry entry{node_id, {}};
    const std::string_view hex = std::string_view(hash).substr(kHashPrefix.size());
    for (size_t i = 0; i < entry.digest.size(); ++i) {
      entry.digest[i] = static_cast<uint8_t>(HexValue(hex[2 * i]) * 16 + HexValue(hex[2 * i + 1]));
    }
    table.push_back(std::move(entry));
  }
  return table;
}

absl::StatusOr<std::string> NodeAuthenticator::Authenticate(std::string_view authorization) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError("missing \"authorization: Bearer <node token>\" metadata");
  }
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kScheme.size()),
                              absl::string_view(kScheme.data(), kScheme.size()))) {
    return absl::UnauthenticatedError("authorization metadata must be \"Bearer <node token>\"");
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return absl::UnauthenticatedError("empty bearer token");

  const std::array<uint8_t, 32> digest = Sha256(token);
  absl::MutexLock lock(&mu_);
  const Entry* match = nullptr;
  // Every entry is compared, matched or not.
  for (const Entry& entry : entries_) {
    if (ConstantTimeEqual(entry.digest, digest) && match == nullptr) match = &entry;
  }
  if (match == nullptr) return absl::UnauthenticatedError("unknown node token");
  return match->node_id;
}

std::vector<std::string> NodeAuthenticator::NodeIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const Entry& entry : entries_) ids.push_back(entry.node_id);
  return ids;
}

}  // namespace hsync::hub
