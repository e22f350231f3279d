#include "crypto/aead.h"

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace omd::crypto {
namespace {

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

// RFC 5869, test case 1 (HKDF-SHA256).
TEST(DeriveKeyTest, MatchesRfc5869) {
  absl::StatusOr<AeadKey> key =
      DeriveKey(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(absl::BytesToHexString(std::string(key->begin(), key->end())),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

// NIST GCM test vector: AES-256, 96-bit IV, with AAD (gcmEncryptExtIV256.rsp).
TEST(AesGcmTest, MatchesNistVector) {
  AeadKey key;
  const std::string key_bytes =
      Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  std::copy(key_bytes.begin(), key_bytes.end(), key.begin());
  const std::string nonce = Hex("cafebabefacedbaddecaf888");
  const std::string aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string plaintext = Hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  absl::StatusOr<std::string> sealed = AesGcmSeal(key, nonce, aad, plaintext);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(absl::BytesToHexString(*sealed),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
            "76fc6ece0f4e1768cddf8853bb2d551b");
  absl::StatusOr<std::string> opened = AesGcmOpen(key, nonce, aad, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plaintext);
}

TEST(AesGcmTest, EveryFlippedBitIsRefused) {
  AeadKey key{};
  const std::string nonce(kNonceBytes, '\x01');
  const std::string sealed = AesGcmSeal(key, nonce, "aad", "hello").value();
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] ^= 0x01;
    absl::StatusOr<std::string> opened = AesGcmOpen(key, nonce, "aad", tampered);
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnauthenticated) << "byte " << i;
  }
  EXPECT_EQ(AesGcmOpen(key, nonce, "aaD", sealed).status().code(),
            absl::StatusCode::kUnauthenticated);
  AeadKey other_key{};
  other_key[0] = 1;
  EXPECT_EQ(AesGcmOpen(other_key, nonce, "aad", sealed).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AesGcmTest, RefusesBadSizes) {
  AeadKey key{};
  EXPECT_EQ(AesGcmSeal(key, "short", "", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AesGcmOpen(key, "short", "", std::string(32, 'x')).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AesGcmOpen(key, std::string(kNonceBytes, 'n'), "", "tiny").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AesGcmTest, EmptyPlaintextRoundTrips) {
  AeadKey key{};
  const std::string nonce(kNonceBytes, '\x02');
  const std::string sealed = AesGcmSeal(key, nonce, "", "").value();
  EXPECT_EQ(sealed.size(), kTagBytes);
  EXPECT_EQ(AesGcmOpen(key, nonce, "", sealed).value(), "");
}

TEST(RandomBytesTest, ReturnsDistinctValuesOfTheRequestedSize) {
  EXPECT_EQ(RandomBytes(16).size(), 16u);
  EXPECT_NE(RandomBytes(16), RandomBytes(16));
  EXPECT_EQ(RandomBytes(0), "");
  EXPECT_EQ(RandomBytes(1000).size(), 1000u);
}

// Small draws come from a per-thread block: across many refills of it, no draw
// repeats another.
TEST(RandomBytesTest, SmallDrawsNeverRepeatAcrossBlocks) {
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(seen.insert(RandomBytes(28)).second) << i;
  }
}

// A forked child must not hand out the bytes its parent's block still holds.
TEST(RandomBytesTest, AForkedChildDrawsOtherBytesThanItsParent) {
  RandomBytes(16);  // the block is full now, but for these 16 bytes
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string drawn = RandomBytes(16);
    _exit(write(pipe_fds[1], drawn.data(), drawn.size()) == 16 ? 0 : 1);
  }
  close(pipe_fds[1]);
  const std::string parent = RandomBytes(16);
  char child_bytes[16];
  ASSERT_EQ(read(pipe_fds[0], child_bytes, sizeof(child_bytes)), 16);
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_NE(parent, std::string(child_bytes, sizeof(child_bytes)));
}

}  // namespace
}  // namespace omd::crypto
