// SRTP protection of one outgoing RTP stream (RFC 3711) on OpenSSL:
// AES-128 counter mode with HMAC-SHA1 authentication, or AES-128-GCM
// (RFC 7714), which costs about 0.6x as much for a full-sized packet
// (bench/srtp-cost) and is what we prefer when the viewer offers it.
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

// The DTLS-SRTP protection profiles we implement (RFC 5764 4.1.2, RFC 7714
// 14.2). GStreamer 1.22's DTLS, behind webrtcbin, offers only the two CM ones.
enum class SrtpProfile { Aes128CmSha1_80, Aes128CmSha1_32, AeadAes128Gcm };

// The sizes a profile fixes. Every profile's master key is 16 bytes.
struct SrtpProfileSizes {
  size_t salt;      // master and session salt: 14 (CM) or 12 (GCM)
  size_t rtp_tag;   // appended to each RTP packet: 10, 4 or 16
  size_t rtcp_tag;  // in each SRTCP packet: 10 (both CM profiles) or 16
};
SrtpProfileSizes srtp_profile_sizes(SrtpProfile profile);
// The profile's name in RFC 5764 / RFC 7714 (for stats and logs).
const char *srtp_profile_name(SrtpProfile profile);


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
// derivation rate 0; RFC 7714 11 for GCM, whose 12-byte master salt is
// zero-padded to 14 for the same derivation), derived once from a master key
// and salt: the cipher keyed with the session key (AES-128-CTR, or
// AES-128-GCM which also authenticates), the pre-keyed HMAC (CM only), and
// the session salt.
class SrtpSessionKeys {
 public:
  enum class Stream { Rtp, Rtcp };  // derivation labels 0x00-0x02 or 0x03-0x05
  static constexpr size_t kKeyLength = 16;
  static constexpr size_t kMaxSaltLength = 14;
  SrtpSessionKeys() = default;
  ~SrtpSessionKeys();
  SrtpSessionKeys(const SrtpSessionKeys &) = delete;
  SrtpSessionKeys &operator=(const SrtpSessionKeys &) = delete;
  // `master_key_salt`: the 16-byte master key, then the profile's master
  // salt. False if OpenSSL fails.
  bool derive(SrtpProfile profile, const uint8_t *master_key_salt, Stream stream);
  // Session keys given as they are, as RFC 7714's test vectors give them
  // (GCM only: a CM profile would also need the authentication key).
  bool assign_gcm(const uint8_t *session_key, const uint8_t *session_salt);
  bool aead() const { return aead_; }
  EVP_CIPHER_CTX *cipher() const { return cipher_; }
  const uint8_t *salt() const { return salt_; }
  const PrekeyedHmacSha1 &hmac() const { return hmac_; }

 private:
  bool key_cipher(const uint8_t *session_key);
  bool aead_ = false;
  EVP_CIPHER_CTX *cipher_ = nullptr;
  uint8_t salt_[kMaxSaltLength] = {};
  PrekeyedHmacSha1 hmac_;
};

class SrtpContext {
 public:
  static constexpr size_t kMasterKeyLength = 16;
  static constexpr size_t kMaxTagLength = 16;  // GCM's

  // `master_key_salt`: 16-byte master key, then the profile's master salt,
  // as DTLS-SRTP exports them. nullptr if OpenSSL cannot set up the cipher.
  static std::unique_ptr<SrtpContext> create(SrtpProfile profile, const uint8_t *master_key_salt);
  // GCM with the session key and salt given (RFC 7714's test vectors).
  static std::unique_ptr<SrtpContext> create_gcm_with_session_keys(const uint8_t *session_key,
                                                                   const uint8_t *session_salt);
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
  bool protect_cm(uint8_t *packet, size_t length, size_t header_length, uint32_t roc);
  bool protect_gcm(uint8_t *packet, size_t length, size_t header_length, uint32_t roc);

  SrtpSessionKeys keys_;
  size_t tag_length_ = kMaxTagLength;
  bool started_ = false;
  uint16_t highest_seq_ = 0;
  uint32_t rollover_ = 0;
};

}  // namespace wb
