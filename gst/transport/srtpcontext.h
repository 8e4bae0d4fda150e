// SRTP protection of one outgoing RTP stream (RFC 3711), AES-128 counter
// mode with HMAC-SHA1 authentication, on OpenSSL.
//
// Not libsrtp: Debian's libsrtp2 is built on NSS, which creates and destroys
// a PKCS#11 context for every packet and looks keys up in tables that grow
// with every viewer's key, so a viewer's cost grew with the audience
// (profile in docs/per-viewer-cost.md). Here the AES key schedule and the
// HMAC's inner and outer hash states are computed once per key, and a packet
// costs one counter-mode pass and two SHA-1 finishes.
#pragma once

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace wb {

// The SRTP protection profiles of RFC 5764 that we implement (GStreamer
// 1.22's DTLS offers only these two).
enum class SrtpProfile { Aes128CmSha1_80, Aes128CmSha1_32 };


// HMAC-SHA1 with the key's inner and outer pads hashed once: a packet
// costs copying two SHA-1 states and two finishes. Used by SRTP and SRTCP.
class PrekeyedHmacSha1 {
 public:
  PrekeyedHmacSha1() = default;
  ~PrekeyedHmacSha1();
  PrekeyedHmacSha1(const PrekeyedHmacSha1 &) = delete;
  PrekeyedHmacSha1 &operator=(const PrekeyedHmacSha1 &) = delete;
  void set_key(const uint8_t *key, size_t length);  // length <= SHA_CBLOCK
  // HMAC of `a` followed by `b` (b may be empty) into `digest` (20 bytes).
  void digest(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length, uint8_t *digest) const;

 private:
  SHA_CTX inner_{};  // SHA-1 after (key ^ ipad)
  SHA_CTX outer_{};  // SHA-1 after (key ^ opad)
};

// The session keys of one SRTP or SRTCP stream (RFC 3711 4.3.1, key
// derivation rate 0), derived once from a master key and salt: AES-128-CTR
// keyed with the session key, the pre-keyed HMAC, and the session salt.
class SrtpSessionKeys {
 public:
  enum class Stream { Rtp, Rtcp };  // derivation labels 0x00-0x02 or 0x03-0x05
  static constexpr size_t kSaltLength = 14;
  SrtpSessionKeys() = default;
  ~SrtpSessionKeys();
  SrtpSessionKeys(const SrtpSessionKeys &) = delete;
  SrtpSessionKeys &operator=(const SrtpSessionKeys &) = delete;
  // `master_key`: 16 bytes, `master_salt`: 14. False if OpenSSL fails.
  bool derive(const uint8_t *master_key, const uint8_t *master_salt, Stream stream);
  EVP_CIPHER_CTX *cipher() const { return cipher_; }
  const uint8_t *salt() const { return salt_; }
  const PrekeyedHmacSha1 &hmac() const { return hmac_; }

 private:
  EVP_CIPHER_CTX *cipher_ = nullptr;
  uint8_t salt_[kSaltLength] = {};
  PrekeyedHmacSha1 hmac_;
};

class SrtpContext {
 public:
  static constexpr size_t kMasterKeyLength = 16;
  static constexpr size_t kMasterSaltLength = 14;
  static constexpr size_t kMaxTagLength = 10;

  // `tag_length`: 10 (AES_CM_128_HMAC_SHA1_80) or 4 (_32). nullptr if
  // OpenSSL cannot set up AES-128-CTR.
  static std::unique_ptr<SrtpContext> create(const uint8_t *master_key, const uint8_t *master_salt,
                                             size_t tag_length);
  ~SrtpContext();
  SrtpContext(const SrtpContext &) = delete;
  SrtpContext &operator=(const SrtpContext &) = delete;

  // Encrypts the payload of the RTP packet in `packet` (`*length` bytes, the
  // header `header_length` of them) in place and appends the tag, which
  // needs tag_length() writable bytes after the packet. One SSRC per context:
  // the rollover counter follows that stream's sequence numbers.
  bool protect(uint8_t *packet, size_t *length, size_t header_length);

  size_t tag_length() const { return tag_length_; }

 private:
  SrtpContext() = default;
  uint32_t rollover_for(uint16_t seq);

  SrtpSessionKeys keys_;
  size_t tag_length_ = kMaxTagLength;
  bool started_ = false;
  uint16_t highest_seq_ = 0;
  uint32_t rollover_ = 0;
};

}  // namespace wb
