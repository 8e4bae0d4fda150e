// SRTCP (gst/transport/srtcpcontext.*): every datagram on the ICE-lite port
// from a viewer's nominated address that is not STUN or DTLS is unprotected
// before anything else reads it. Fixed keys; the input is a sequence of
// packets (16-bit length before each), after a mode byte (bit 7: the
// AEAD_AES_128_GCM profile instead of AES-CM + HMAC-SHA1-80):
//  0: raw datagrams into a receiver, as an attacker without the keys sends;
//  1: compounds protected by a sender with the same keys must come out of
//     the receiver unchanged, once: the second copy is a replay;
//  2: packets signed with the session keys but with any sender SSRC (one of
//     20, more than the receiver keeps windows for), index and E flag, as
//     only the peer could send: exercises the replay windows (CM only: a
//     GCM packet cannot be signed without being sealed, which mode 1 does).
#include <cstring>

#include "fuzz.h"
#include "transport/srtcpcontext.h"

namespace {

using wb::SrtcpContext;
using wb::SrtpProfile;
using wb::SrtpSessionKeys;

const uint8_t kKeySalt[30] = {0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
                              0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6};

void raw(fuzz::Input &in, SrtcpContext &receiver) {
  while (in.remaining()) {
    std::vector<uint8_t> packet = in.chunk();
    size_t length = packet.size();
    if (receiver.unprotect(packet.data(), &length)) FUZZ_CHECK(length + receiver.trailer_length() == packet.size());
  }
}

void round_trip(fuzz::Input &in, SrtcpContext &receiver, SrtpProfile profile) {
  auto sender = SrtcpContext::create(profile, kKeySalt);
  FUZZ_CHECK(sender);
  while (in.remaining()) {
    std::vector<uint8_t> plain = in.chunk();
    if (plain.size() < 8) continue;  // protect() needs the header and sender SSRC
    std::vector<uint8_t> packet(plain);
    packet.resize(plain.size() + sender->trailer_length());
    size_t length = plain.size();
    FUZZ_CHECK(sender->protect(packet.data(), &length));
    FUZZ_CHECK(length == packet.size());
    std::vector<uint8_t> replay(packet);
    FUZZ_CHECK(receiver.unprotect(packet.data(), &length));
    FUZZ_CHECK(length == plain.size() && std::memcmp(packet.data(), plain.data(), length) == 0);
    length = replay.size();
    FUZZ_CHECK(!receiver.unprotect(replay.data(), &length));
  }
}

void forged(fuzz::Input &in, SrtcpContext &receiver) {
  SrtpSessionKeys keys;
  FUZZ_CHECK(keys.derive(SrtpProfile::Aes128CmSha1_80, kKeySalt, SrtpSessionKeys::Stream::Rtcp));
  while (in.remaining()) {
    const uint32_t ssrc = 0x1000 + in.u8() % 20;
    const uint32_t e_index = in.u32();
    std::vector<uint8_t> packet = {0x81, 0xC9, 0x00, 0x01, uint8_t(ssrc >> 24), uint8_t(ssrc >> 16),
                                   uint8_t(ssrc >> 8), uint8_t(ssrc)};
    std::vector<uint8_t> body = in.bytes(in.u8());
    packet.insert(packet.end(), body.begin(), body.end());
    const size_t plain = packet.size();
    for (int shift = 24; shift >= 0; shift -= 8) packet.push_back(uint8_t(e_index >> shift));
    uint8_t tag[20];
    keys.hmac().digest(packet.data(), packet.size(), nullptr, 0, tag);
    packet.insert(packet.end(), tag, tag + 10);
    std::vector<uint8_t> again(packet);
    std::vector<uint8_t> sent(packet.begin(), packet.begin() + plain);
    size_t length = packet.size();
    if (!receiver.unprotect(packet.data(), &length)) continue;
    FUZZ_CHECK(length == plain);
    // Unencrypted (E=0) packets come out as they were sent.
    if (!(e_index & 0x80000000u)) FUZZ_CHECK(std::memcmp(packet.data(), sent.data(), plain) == 0);
    length = again.size();
    FUZZ_CHECK(!receiver.unprotect(again.data(), &length));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const SrtpProfile profile = data[0] & 0x80 ? SrtpProfile::AeadAes128Gcm : SrtpProfile::Aes128CmSha1_80;
  auto receiver = SrtcpContext::create(profile, kKeySalt);
  FUZZ_CHECK(receiver);
  fuzz::Input in(data + 1, size - 1);
  switch ((data[0] & 0x7F) % 3) {
    case 0: raw(in, *receiver); break;
    case 1: round_trip(in, *receiver, profile); break;
    default:
      if (profile != SrtpProfile::AeadAes128Gcm) forged(in, *receiver);
      break;
  }
  return 0;
}
