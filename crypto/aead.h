// AES-256-GCM and HKDF-SHA256 through OpenSSL EVP: the primitives under the envelope.
//
// Cipher contexts are created once per thread and reused, and the cipher is fetched
// from the provider once per process, so sealing a small message costs a fraction of
// a microsecond (docs/BENCHMARKS.md).
//
//   AeadKey key = DeriveKey(secret, salt, "info").value();
//   std::string sealed = AesGcmSeal(key, nonce, aad, plaintext).value();
//   std::string plaintext = AesGcmOpen(key, nonce, aad, sealed).value();
#ifndef OMD_CRYPTO_AEAD_H_
#define OMD_CRYPTO_AEAD_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace omd::crypto {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;

using AeadKey = std::array<uint8_t, kKeyBytes>;

// HKDF-SHA256 (RFC 5869) with `secret` as input keying material.
absl::StatusOr<AeadKey> DeriveKey(absl::string_view secret, absl::string_view salt,
                                  absl::string_view info);

// Returns the ciphertext followed by the 16-byte tag. `nonce` must be 12 bytes.
absl::StatusOr<std::string> AesGcmSeal(const AeadKey& key, absl::string_view nonce,
                                       absl::string_view aad,
                                       absl::string_view plaintext);

// Verifies the tag (in constant time, inside OpenSSL) and returns the plaintext.
// UNAUTHENTICATED when the key, nonce, aad or any byte of `sealed` is wrong.
absl::StatusOr<std::string> AesGcmOpen(const AeadKey& key, absl::string_view nonce,
                                       absl::string_view aad,
                                       absl::string_view sealed);

// `count` bytes from OpenSSL's CSPRNG (up to 64 of them through a per-thread
// block, each byte handed out once). Aborts if the CSPRNG fails: nothing secure
// can be done without it.
std::string RandomBytes(size_t count);

}  // namespace omd::crypto

#endif  // OMD_CRYPTO_AEAD_H_
