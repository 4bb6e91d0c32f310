// Real per-user keys in the panel's formats: an Ed25519 pair as OpenSSH text
// (PEM "OPENSSH PRIVATE KEY" + "ssh-ed25519 AAAA..."), a WireGuard pair and
// preshared key (44-char base64), plus uuids and passwords. Thread-safe.
#pragma once

#include <string>

namespace hsync::panelsim {

struct Ed25519Keys {
  std::string private_openssh;  // "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END ...-----\n"
  std::string public_openssh;   // "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5..."
};

struct WireGuardKeys {
  std::string private_key;
  std::string public_key;
  std::string preshared_key;
};

Ed25519Keys GenerateEd25519Keys();
WireGuardKeys GenerateWireGuardKeys();
// A random version-4 uuid, lower case.
std::string RandomUuid4();
// `length` random characters from [A-Za-z0-9].
std::string RandomAlnum(int length);

}  // namespace hsync::panelsim
