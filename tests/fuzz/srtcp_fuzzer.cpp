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
//     only the peer could send: exercises the replay windows. CM: the body
//     is left as it is and signed; GCM: sealed here with OpenSSL's AES-GCM
//     from the session keys, independently of SrtcpContext (RFC 7714 9),
//     so the receiver must also give back the body we sealed.
#include <openssl/evp.h>

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

// RFC 7714 9: IV = salt ^ (0x0000 || SSRC || 0x0000 || 0 || index); the
// associated data is the first 8 bytes then E|index (E=1) or the whole
// compound then E|index (E=0, nothing encrypted); the packet is the
// compound (body encrypted if E=1), the 16-byte tag, then E|index.
void seal_gcm(const SrtpSessionKeys &keys, std::vector<uint8_t> &packet, uint32_t e_index) {
  const bool encrypted = e_index & 0x80000000u;
  uint8_t iv[12], trailer[4];
  std::memcpy(iv, keys.salt(), sizeof iv);
  for (int i = 0; i < 4; ++i) iv[2 + i] ^= packet[4 + i];
  for (int i = 0; i < 4; ++i) trailer[i] = uint8_t(e_index >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) iv[8 + i] ^= uint8_t(i == 0 ? trailer[0] & 0x7F : trailer[i]);
  EVP_CIPHER_CTX *gcm = keys.cipher();
  uint8_t tag[16];
  int n = 0;
  FUZZ_CHECK(EVP_EncryptInit_ex(gcm, nullptr, nullptr, nullptr, iv) == 1);
  FUZZ_CHECK(EVP_EncryptUpdate(gcm, nullptr, &n, packet.data(), int(encrypted ? 8 : packet.size())) == 1);
  FUZZ_CHECK(EVP_EncryptUpdate(gcm, nullptr, &n, trailer, sizeof trailer) == 1);
  if (encrypted && packet.size() > 8)
    FUZZ_CHECK(EVP_EncryptUpdate(gcm, packet.data() + 8, &n, packet.data() + 8, int(packet.size() - 8)) == 1);
  FUZZ_CHECK(EVP_EncryptFinal_ex(gcm, tag, &n) == 1);
  FUZZ_CHECK(EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_GET_TAG, sizeof tag, tag) == 1);
  packet.insert(packet.end(), tag, tag + sizeof tag);
  packet.insert(packet.end(), trailer, trailer + sizeof trailer);
}

void forged(fuzz::Input &in, SrtcpContext &receiver, SrtpProfile profile) {
  const bool gcm = profile == SrtpProfile::AeadAes128Gcm;
  SrtpSessionKeys keys;
  FUZZ_CHECK(keys.derive(profile, kKeySalt, SrtpSessionKeys::Stream::Rtcp));
  while (in.remaining()) {
    const uint32_t ssrc = 0x1000 + in.u8() % 20;
    const uint32_t e_index = in.u32();
    std::vector<uint8_t> packet = {0x81, 0xC9, 0x00, 0x01, uint8_t(ssrc >> 24), uint8_t(ssrc >> 16),
                                   uint8_t(ssrc >> 8), uint8_t(ssrc)};
    std::vector<uint8_t> body = in.bytes(in.u8());
    packet.insert(packet.end(), body.begin(), body.end());
    const size_t plain = packet.size();
    const std::vector<uint8_t> unsealed(packet);
    if (gcm) {
      seal_gcm(keys, packet, e_index);
    } else {
      for (int shift = 24; shift >= 0; shift -= 8) packet.push_back(uint8_t(e_index >> shift));
      uint8_t tag[20];
      keys.hmac().digest(packet.data(), packet.size(), nullptr, 0, tag);
      packet.insert(packet.end(), tag, tag + 10);
    }
    FUZZ_CHECK(packet.size() == plain + receiver.trailer_length());
    std::vector<uint8_t> again(packet);
    std::vector<uint8_t> sent(packet.begin(), packet.begin() + plain);
    size_t length = packet.size();
    if (!receiver.unprotect(packet.data(), &length)) {
      // Only as a replay or too old: the signature or seal is right, so a
      // receiver that has seen nothing takes it.
      auto fresh = SrtcpContext::create(profile, kKeySalt);
      FUZZ_CHECK(fresh);
      length = again.size();
      std::vector<uint8_t> copy(again);
      FUZZ_CHECK(fresh->unprotect(copy.data(), &length) && length == plain);
      continue;
    }
    FUZZ_CHECK(length == plain);
    // Unencrypted (E=0) packets come out as they were sent; GCM's sealed
    // ones as they were before sealing.
    if (!(e_index & 0x80000000u)) FUZZ_CHECK(std::memcmp(packet.data(), sent.data(), plain) == 0);
    if (gcm) FUZZ_CHECK(std::memcmp(packet.data(), unsealed.data(), plain) == 0);
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
    default: forged(in, *receiver, profile); break;
  }
  return 0;
}
