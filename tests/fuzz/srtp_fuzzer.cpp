// SRTP (gst/transport/srtpcontext.*): we only protect, but what we protect
// comes from upstream (an encoder, or a relay's upstream node or WHIP
// publisher), with sequence numbers we do not choose, and NACKs make us
// send old ones again. Fixed keys; the mode byte's bits 1-2 pick the
// profile (AES_CM_128_HMAC_SHA1_80, _32, AEAD_AES_128_GCM), and then:
//  even: raw packets (16-bit length and a header length before each) into
//        protect(), which must refuse what it cannot protect and grow the
//        rest by the tag;
//  odd:  a stream of well-formed RTP packets (sequence numbers jumping
//        forward, wrapping, or going back as a retransmission does, never
//        to before the first packet sent) must unprotect with libsrtp2, the
//        reference browsers use, to the same bytes: the rollover counter we
//        keep must be the one it infers.
#include <arpa/inet.h>
#include <srtp2/srtp.h>

#include <algorithm>
#include <cstring>

#include "fuzz.h"
#include "transport/srtpcontext.h"

namespace {

using wb::SrtpContext;
using wb::SrtpProfile;

uint8_t key_salt[30] = {0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
                        0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6};

void raw(fuzz::Input &in, SrtpContext &ours) {
  while (in.remaining()) {
    std::vector<uint8_t> packet = in.chunk();
    const size_t header_length = in.u16();
    const size_t plain = packet.size();
    packet.resize(plain + ours.tag_length());
    size_t length = plain;
    bool ok = ours.protect(packet.data(), &length, header_length);
    FUZZ_CHECK(ok == (plain >= 12 && header_length >= 12 && header_length <= plain));
    FUZZ_CHECK(length == (ok ? plain + ours.tag_length() : plain));
  }
}

// One libsrtp2 session per profile for the whole run: creating one
// (NSS underneath) cost most of an input's time. Each input's stream is
// removed after it, so the next one starts with no rollover counter or
// replay window.
class Receiver {
 public:
  static Receiver &for_profile(SrtpProfile profile) {
    static Receiver cm80(SrtpProfile::Aes128CmSha1_80), cm32(SrtpProfile::Aes128CmSha1_32),
        gcm(SrtpProfile::AeadAes128Gcm);
    return profile == SrtpProfile::AeadAes128Gcm ? gcm : profile == SrtpProfile::Aes128CmSha1_32 ? cm32 : cm80;
  }
  srtp_t session() const { return session_; }

 private:
  explicit Receiver(SrtpProfile profile) {
    static bool initialised = srtp_init() == srtp_err_status_ok;
    FUZZ_CHECK(initialised);
    srtp_policy_t policy;
    std::memset(&policy, 0, sizeof policy);
    if (profile == SrtpProfile::AeadAes128Gcm) {
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    } else {
      if (profile == SrtpProfile::Aes128CmSha1_80) srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
      else srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    }
    policy.ssrc.type = ssrc_any_inbound;
    policy.key = key_salt;
    policy.window_size = 128;
    FUZZ_CHECK(srtp_create(&session_, &policy) == srtp_err_status_ok);
  }
  srtp_t session_ = nullptr;
};

// The input's stream in the shared session, gone with the input.
struct InboundStream {
  srtp_t session;
  uint32_t ssrc;
  bool received = false;  // libsrtp2 creates the stream on the first packet
  ~InboundStream() {
    srtp_err_status_t status = srtp_remove_stream(session, htonl(ssrc));
    FUZZ_CHECK(status == (received ? srtp_err_status_ok : srtp_err_status_no_ctx));
  }
};

void against_libsrtp(fuzz::Input &in, SrtpContext &ours, SrtpProfile profile) {
  srtp_t theirs = Receiver::for_profile(profile).session();
  const uint32_t ssrc = in.u32();
  InboundStream stream{theirs, ssrc};
  // Sequence numbers extended past 16 bits, to say what a sender does:
  // new packets go past the newest (by up to 3000, lost ones included);
  // a retransmission resends one of the last 1024 (the fan-out's history),
  // never one from before the first packet this viewer was sent: the
  // fan-out's retransmit() answers only sequence numbers it sent the branch
  // (`last_seq - seq < delivered`), and a viewer cannot know of earlier
  // ones to ask for them. The bound is the first packet *sent*, not the
  // starting value read below: the first step usually moves past it.
  //
  // Why the bound matters: a packet from before the first one across a
  // wrap (first sent 93, then 65520) has no index at all (it would be -16;
  // the rollover counter starts at 0 with the first packet and cannot go
  // below). libsrtp2 cannot take it for an old packet either: while its
  // highest index is at most 0x8000, srtp_rdbx_estimate_index() (rdbx.c)
  // guesses rollover counter 0 for every sequence number instead of calling
  // srtp_index_guess(), so it accepts 65520 as a new packet 65427 ahead,
  // and then expects rollover counter 1 for 951 (next to 65520) where the
  // sender, rightly, still counts 0 (tests/fuzz/crashes/
  // srtp-libsrtp-auth-fail-after-first-packet-resent: 93, 65520, 951).
  // No sender can send such a packet without its counter and the
  // receiver's parting; ours never sends one.
  int64_t newest = in.u16();
  int64_t first = -1;  // the first packet sent, once it is
  while (in.remaining()) {
    const uint16_t step = in.u16();
    const int64_t oldest = first < 0 ? newest : first;
    int64_t next = step & 0x8000 ? std::max(oldest, newest - (step & 0x7FFF) % 1024) : newest + step % 3000;
    if (first < 0) first = next;
    newest = std::max(newest, next);
    const uint16_t seq = uint16_t(next);
    const uint8_t flags = in.u8();
    const size_t csrcs = flags & 0x0F;
    const size_t extension_words = flags & 0x10 ? in.u8() % 8 : 0;
    std::vector<uint8_t> packet = {uint8_t(0x80 | (flags & 0x10) | csrcs), uint8_t(in.u8() & 0x7F),
                                   uint8_t(seq >> 8), uint8_t(seq)};
    for (int i = 0; i < 4; ++i) packet.push_back(in.u8());  // timestamp
    for (int shift = 24; shift >= 0; shift -= 8) packet.push_back(uint8_t(ssrc >> shift));
    for (size_t i = 0; i < 4 * csrcs; ++i) packet.push_back(in.u8());
    if (flags & 0x10) {
      packet.insert(packet.end(), {0xBE, 0xDE, 0, uint8_t(extension_words)});
      for (size_t i = 0; i < 4 * extension_words; ++i) packet.push_back(in.u8());
    }
    const size_t header_length = packet.size();
    std::vector<uint8_t> payload = in.bytes(in.u8() * 5);
    packet.insert(packet.end(), payload.begin(), payload.end());
    const std::vector<uint8_t> plain(packet);

    packet.resize(plain.size() + ours.tag_length());
    size_t length = plain.size();
    FUZZ_CHECK(ours.protect(packet.data(), &length, header_length));
    int their_length = int(length);
    srtp_err_status_t status = srtp_unprotect(theirs, packet.data(), &their_length);
    stream.received = true;
    // A sequence number sent before, or older than libsrtp's window, is
    // refused as a replay, which says nothing about our protection.
    if (status == srtp_err_status_replay_fail || status == srtp_err_status_replay_old) continue;
    FUZZ_CHECK(status == srtp_err_status_ok);
    FUZZ_CHECK(size_t(their_length) == plain.size() && std::memcmp(packet.data(), plain.data(), plain.size()) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const SrtpProfile profile = data[0] & 4   ? SrtpProfile::AeadAes128Gcm
                              : data[0] & 2 ? SrtpProfile::Aes128CmSha1_32
                                            : SrtpProfile::Aes128CmSha1_80;
  auto ours = SrtpContext::create(profile, key_salt);
  FUZZ_CHECK(ours);
  fuzz::Input in(data + 1, size - 1);
  if (data[0] % 2 == 0) raw(in, *ours);
  else against_libsrtp(in, *ours, profile);
  return 0;
}
