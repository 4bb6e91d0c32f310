#include "tests/panelsim/key_generator.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace hsync::panelsim {
namespace {

std::vector<uint8_t> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
    // Never expected; fall back to something unique enough for a test double.
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(std::rand());
  }
  return out;
}

std::string Base64(const std::vector<uint8_t>& bytes) {
  return absl::Base64Escape(
      std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// SSH wire format helpers (RFC 4251): uint32 big endian, length-prefixed strings.
void PutU32(std::vector<uint8_t>* out, uint32_t v) {
  out->push_back(static_cast<uint8_t>(v >> 24));
  out->push_back(static_cast<uint8_t>(v >> 16));
  out->push_back(static_cast<uint8_t>(v >> 8));
  out->push_back(static_cast<uint8_t>(v));
}

void PutString(std::vector<uint8_t>* out, const std::vector<uint8_t>& bytes) {
  PutU32(out, static_cast<uint32_t>(bytes.size()));
  out->insert(out->end(), bytes.begin(), bytes.end());
}

void PutString(std::vector<uint8_t>* out, std::string_view text) {
  PutString(out, std::vector<uint8_t>(text.begin(), text.end()));
}

// Raw 32-byte private and public key of a fresh key of `type` (ED25519 or X25519).
bool RawKeyPair(int type, std::array<uint8_t, 32>* priv, std::array<uint8_t, 32>* pub) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(type, nullptr);
  if (ctx == nullptr) return false;
  EVP_PKEY* key = nullptr;
  bool ok = EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &key) == 1;
  size_t priv_len = priv->size();
  size_t pub_len = pub->size();
  ok = ok && EVP_PKEY_get_raw_private_key(key, priv->data(), &priv_len) == 1 &&
       EVP_PKEY_get_raw_public_key(key, pub->data(), &pub_len) == 1 && priv_len == 32 &&
       pub_len == 32;
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

}  // namespace

Ed25519Keys GenerateEd25519Keys() {
  std::array<uint8_t, 32> seed{};
  std::array<uint8_t, 32> pub{};
  if (!RawKeyPair(EVP_PKEY_ED25519, &seed, &pub)) {
    const std::vector<uint8_t> r = RandomBytes(64);
    std::copy(r.begin(), r.begin() + 32, seed.begin());
    std::copy(r.begin() + 32, r.end(), pub.begin());
  }
  const std::vector<uint8_t> pub_bytes(pub.begin(), pub.end());

  std::vector<uint8_t> public_blob;
  PutString(&public_blob, "ssh-ed25519");
  PutString(&public_blob, pub_bytes);

  // openssh-key-v1 (OpenSSH PROTOCOL.key), unencrypted, one key, empty comment.
  std::vector<uint8_t> private_section;
  const std::vector<uint8_t> check = RandomBytes(4);
  private_section.insert(private_section.end(), check.begin(), check.end());
  private_section.insert(private_section.end(), check.begin(), check.end());
  PutString(&private_section, "ssh-ed25519");
  PutString(&private_section, pub_bytes);
  std::vector<uint8_t> secret(seed.begin(), seed.end());
  secret.insert(secret.end(), pub.begin(), pub.end());
  PutString(&private_section, secret);
  PutString(&private_section, "");
  for (uint8_t pad = 1; private_section.size() % 8 != 0; ++pad) private_section.push_back(pad);

  std::vector<uint8_t> blob;
  const std::string_view magic("openssh-key-v1\0", 15);
  blob.insert(blob.end(), magic.begin(), magic.end());
  PutString(&blob, "none");
  PutString(&blob, "none");
  PutString(&blob, "");
  PutU32(&blob, 1);
  PutString(&blob, public_blob);
  PutString(&blob, private_section);

  const std::string body = Base64(blob);
  Ed25519Keys keys;
  keys.private_openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (size_t i = 0; i < body.size(); i += 70) {
    keys.private_openssh.append(body, i, 70);
    keys.private_openssh.push_back('\n');
  }
  keys.private_openssh.append("-----END OPENSSH PRIVATE KEY-----\n");
  keys.public_openssh = "ssh-ed25519 " + Base64(public_blob);
  return keys;
}

WireGuardKeys GenerateWireGuardKeys() {
  std::array<uint8_t, 32> priv{};
  std::array<uint8_t, 32> pub{};
  if (!RawKeyPair(EVP_PKEY_X25519, &priv, &pub)) {
    const std::vector<uint8_t> r = RandomBytes(64);
    std::copy(r.begin(), r.begin() + 32, priv.begin());
    std::copy(r.begin() + 32, r.end(), pub.begin());
  }
  // WireGuard's clamped form of the private scalar (as `wg genkey` prints it).
  priv[0] &= 248;
  priv[31] = static_cast<uint8_t>((priv[31] & 127) | 64);
  WireGuardKeys keys;
  keys.private_key = Base64(std::vector<uint8_t>(priv.begin(), priv.end()));
  keys.public_key = Base64(std::vector<uint8_t>(pub.begin(), pub.end()));
  keys.preshared_key = Base64(RandomBytes(32));
  return keys;
}

std::string RandomUuid4() {
  std::vector<uint8_t> b = RandomBytes(16);
  b[6] = static_cast<uint8_t>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
      b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

std::string RandomAlnum(int length) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const std::vector<uint8_t> r = RandomBytes(static_cast<size_t>(length));
  std::string out;
  out.reserve(static_cast<size_t>(length));
  for (uint8_t c : r) out.push_back(kAlphabet[c % 62]);
  return out;
}

}  // namespace hsync::panelsim
