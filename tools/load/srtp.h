// One libsrtp2 session (AES_CM_128_HMAC_SHA1_80, the profile DTLS agreed):
// inbound to authenticate and decrypt what the server sends, outbound to
// protect our RTCP.
#pragma once

#include <srtp2/srtp.h>

#include <cstdint>
#include <string>

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

  // `key_salt`: 16-byte master key then 14-byte master salt.
  bool create(Direction direction, const uint8_t *key_salt, std::string *error);
  bool active() const { return session_ != nullptr; }
  // In place; `len` becomes the plain length. False when authentication
  // (or replay protection) rejects the packet.
  bool unprotect_rtp(uint8_t *data, size_t *len);
  bool protect_rtcp(uint8_t *data, size_t *len);

 private:
  srtp_t session_ = nullptr;
};

}  // namespace load
