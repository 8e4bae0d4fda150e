// One libsrtp2 session (AES_CM_128_HMAC_SHA1_80 or AEAD_AES_128_GCM, the
// profile DTLS agreed):
// inbound to authenticate and decrypt what the server sends, outbound to
// protect our RTCP. And a way to read the first bytes of a payload without
// either.
#pragma once

#include <openssl/evp.h>
#include <srtp2/srtp.h>

#include <cstdint>
#include <string>

#include "transport/srtpcontext.h"

namespace load {

class SrtpSession {
 public:
  enum class Direction { Inbound, Outbound };
  // Room protect_rtcp() needs after the packet (auth tag + SRTCP index).
  static constexpr size_t kRtcpTrailer = SRTP_MAX_TRAILER_LEN + 4;

  SrtpSession() = default;
  SrtpSession(const SrtpSession &) = delete;
  SrtpSession &operator=(const SrtpSession &) = delete;
  ~SrtpSession();

  // `key_salt`: 16-byte master key then the profile's master salt.
  bool create(wb::SrtpProfile profile, Direction direction, const uint8_t *key_salt, std::string *error);
  // In place; `len` becomes the plain length. False when authentication
  // (or replay protection) rejects the packet.
  bool unprotect_rtp(uint8_t *data, size_t *len);
  bool protect_rtcp(uint8_t *data, size_t *len);
  // Frees the session now rather than with the viewer: a churn run keeps
  // every viewer's report to the end, and Debian's libsrtp2 gets slower per
  // call with every live session.
  void destroy();

 private:
  srtp_t session_ = nullptr;
};

// The AES keystream of one SRTP sender (RFC 3711 4.1.1 for CM; GCM encrypts
// with the same counter mode, RFC 7714 8.1), to decrypt the first bytes of a
// payload: enough for NAL unit headers (also those inside
// a STAP-A after SPS and PPS), at the cost of a few AES blocks instead of a
// whole srtp_unprotect. Nothing is authenticated: this only tells where
// keyframes are; SrtpSession verifies packets.
class SrtpPayloadPeek {
 public:
  static constexpr size_t kBytes = 64;
  SrtpPayloadPeek() = default;
  SrtpPayloadPeek(const SrtpPayloadPeek &) = delete;
  SrtpPayloadPeek &operator=(const SrtpPayloadPeek &) = delete;
  ~SrtpPayloadPeek();
  // Derives the session key and salt (RFC 3711 4.3.1, key derivation rate 0)
  // from the 16-byte master key and the profile's master salt.
  bool create(wb::SrtpProfile profile, const uint8_t *key_salt);
  // The tag at the end of each packet.
  size_t tag_length() const { return tag_length_; }
  // The first min(len, kBytes) bytes of the payload of packet `index`
  // (rollover counter << 16 | sequence number) from `ssrc`, decrypted into `out`.
  void decrypt_head(uint32_t ssrc, uint64_t index, const uint8_t *payload, size_t len, uint8_t *out);

 private:
  void block(const uint8_t in[16], uint8_t out[16]);  // AES-128 with the current key
  EVP_CIPHER_CTX *aes_ = nullptr;
  bool gcm_ = false;
  size_t tag_length_ = 10;
  uint8_t session_salt_[14] = {};
};

}  // namespace load
