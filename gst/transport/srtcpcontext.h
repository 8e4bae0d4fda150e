// SRTCP (RFC 3711 3.4; RFC 7714 9 for GCM) for one direction of a DTLS-SRTP
// session, on OpenSSL like SrtpContext and for the same reason: the key
// schedule and the HMAC's inner and outer hash states are computed once per
// key, not per packet.
#pragma once

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "transport/srtpcontext.h"

namespace wb {

class SrtcpContext {
 public:
  static constexpr size_t kMaxTrailer = 4 + 16;  // E|index + GCM's tag

  // `key_salt`: the 16-byte master key then the profile's master salt, as
  // DTLS-SRTP exports them. Both CM profiles authenticate SRTCP with 80 bits
  // (RFC 5764 4.1.2; libsrtp's policy for either); GCM with its 16-byte tag.
  // nullptr if OpenSSL cannot set up the cipher.
  static std::unique_ptr<SrtcpContext> create(SrtpProfile profile, const uint8_t *key_salt);
  // GCM with the session key and salt given (RFC 7714's test vectors).
  static std::unique_ptr<SrtcpContext> create_gcm_with_session_keys(const uint8_t *session_key,
                                                                    const uint8_t *session_salt);
  ~SrtcpContext();
  SrtcpContext(const SrtcpContext &) = delete;
  SrtcpContext &operator=(const SrtcpContext &) = delete;

  // What protect() appends: E|index and the tag (CM: index then tag; GCM,
  // RFC 7714 9: tag then index).
  size_t trailer_length() const { return 4 + tag_length_; }

  // Encrypts all but the first 8 bytes (header and sender SSRC) of the
  // compound packet in place and appends E=1|index and the tag, which needs
  // trailer_length() writable bytes after `*length`. The index goes up by one per
  // packet from 1 (as libsrtp's does), whatever the sender SSRC; false once
  // it would pass 2^31 - 1, when the key must be renegotiated.
  bool protect(uint8_t *packet, size_t *length);

  // Checks the tag (in constant time) and the index against the packets
  // already accepted, decrypts if E is set, and sets `*length` to the plain
  // compound's length. False on a bad tag, a replay or a packet too short
  // for the trailer; only packets that pass enter the replay window.
  // With GCM a packet whose tag fails has been decrypted in place already:
  // on false, the buffer holds nothing to read.
  bool unprotect(uint8_t *packet, size_t *length);

 private:
  // A receiver's replay window (RFC 3711 3.3.2) per sender SSRC: libsrtp,
  // which browsers use, counts a separate SRTCP index for each SSRC it
  // sends RTCP from, so one window over all of them would take the second
  // SSRC's packets for replays of the first's.
  struct ReplayWindow {
    uint32_t ssrc;
    uint32_t highest;  // highest index accepted
    uint64_t seen;     // bit n: index highest - n was accepted
    uint64_t last_used;
  };
  static constexpr size_t kMaxSenders = 16;

  SrtcpContext() = default;
  bool crypt(uint8_t *packet, size_t length, uint32_t index);
  void authenticate(const uint8_t *packet, size_t length, uint8_t *digest) const;
  // GCM: seals or opens (checking the tag, in place) the compound of
  // `length` bytes whose tag is at packet + length.
  bool seal_gcm(uint8_t *packet, size_t length, uint32_t e_index);
  bool open_gcm(uint8_t *packet, size_t length, uint32_t e_index);
  const ReplayWindow *find_window(uint32_t ssrc) const;
  void accept(uint32_t ssrc, uint32_t index);

  SrtpSessionKeys keys_;
  size_t tag_length_ = 10;
  uint32_t index_ = 0;    // the last one sent
  std::vector<ReplayWindow> windows_;
  uint64_t accepted_ = 0;  // packets accepted so far: the clock for evicting windows
};

}  // namespace wb
