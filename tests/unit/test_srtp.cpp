// Our SRTP protection (gst/transport/srtpcontext.cpp) must produce, byte for
// byte, what libsrtp2 produces for the same keys: the viewer decrypts with
// libsrtp (Chromium, webrtcbin) and webrtcbin sends the same packets again
// once a second, which only works if the two are identical.
#include <gtest/gtest.h>
#include <srtp2/srtp.h>

#include <cstring>
#include <random>
#include <vector>

#include "transport/srtpcontext.h"

namespace {

struct Reference {
  srtp_t session = nullptr;
  explicit Reference(const std::vector<uint8_t> &key_and_salt, size_t tag) {
    static bool initialised = srtp_init() == srtp_err_status_ok;
    EXPECT_TRUE(initialised);
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (tag == 10) srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    else srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
    srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
    policy.ssrc.type = ssrc_any_outbound;
    policy.key = const_cast<unsigned char *>(key_and_salt.data());
    policy.window_size = 128;
    EXPECT_EQ(srtp_create(&session, &policy), srtp_err_status_ok);
  }
  ~Reference() { srtp_dealloc(session); }
};

// An RTP packet: version 2, `extension_words` 32-bit words of header
// extension, random payload.
std::vector<uint8_t> make_packet(std::mt19937 &rng, uint16_t seq, uint32_t ssrc, size_t payload,
                                 size_t extension_words, size_t *header_length) {
  std::vector<uint8_t> p(12 + (extension_words ? 4 + 4 * extension_words : 0) + payload);
  p[0] = uint8_t(0x80 | (extension_words ? 0x10 : 0));
  p[1] = 96;
  p[2] = uint8_t(seq >> 8);
  p[3] = uint8_t(seq);
  uint32_t ts = rng();
  for (int i = 0; i < 4; ++i) p[4 + i] = uint8_t(ts >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) p[8 + i] = uint8_t(ssrc >> (24 - 8 * i));
  size_t at = 12;
  if (extension_words) {
    p[12] = 0xBE;
    p[13] = 0xDE;
    p[14] = 0;
    p[15] = uint8_t(extension_words);
    at = 16 + 4 * extension_words;
  }
  for (size_t i = 16; i < p.size(); ++i) p[i] = uint8_t(rng());
  *header_length = at;
  return p;
}

void expect_same_as_libsrtp(size_t tag, uint16_t first_seq, size_t count, size_t extension_words) {
  std::mt19937 rng(1234 + tag + first_seq);
  std::vector<uint8_t> key(30);
  for (auto &b : key) b = uint8_t(rng());
  uint32_t ssrc = rng();
  Reference reference(key, tag);
  auto ours = wb::SrtpContext::create(key.data(), key.data() + 16, tag);
  ASSERT_TRUE(ours);
  for (size_t i = 0; i < count; ++i) {
    uint16_t seq = uint16_t(first_seq + i);
    size_t header = 0;
    auto packet = make_packet(rng, seq, ssrc, 1 + rng() % 1180, extension_words, &header);
    std::vector<uint8_t> theirs(packet.size() + SRTP_MAX_TRAILER_LEN);
    memcpy(theirs.data(), packet.data(), packet.size());
    int their_length = int(packet.size());
    ASSERT_EQ(srtp_protect(reference.session, theirs.data(), &their_length), srtp_err_status_ok);
    std::vector<uint8_t> mine(packet.size() + wb::SrtpContext::kMaxTagLength);
    memcpy(mine.data(), packet.data(), packet.size());
    size_t my_length = packet.size();
    ASSERT_TRUE(ours->protect(mine.data(), &my_length, header));
    ASSERT_EQ(my_length, size_t(their_length)) << "seq " << seq;
    ASSERT_EQ(0, memcmp(mine.data(), theirs.data(), my_length)) << "seq " << seq;
  }
}

}  // namespace

TEST(Srtp, Sha1_80MatchesLibsrtp) { expect_same_as_libsrtp(10, 1000, 200, 0); }
TEST(Srtp, Sha1_32MatchesLibsrtp) { expect_same_as_libsrtp(4, 1000, 200, 0); }
TEST(Srtp, HeaderExtensionStaysInTheClear) { expect_same_as_libsrtp(10, 7, 50, 2); }
// The rollover counter enters the IV and the tag from the first wrap on.
TEST(Srtp, SequenceWrapMatchesLibsrtp) { expect_same_as_libsrtp(10, 65500, 300, 0); }

TEST(Srtp, RefusesAnUnknownTagLengthAndAShortPacket) {
  uint8_t key[30] = {};
  EXPECT_FALSE(wb::SrtpContext::create(key, key + 16, 16));
  auto ours = wb::SrtpContext::create(key, key + 16, 10);
  ASSERT_TRUE(ours);
  uint8_t packet[32] = {0x80};
  size_t length = 8;
  EXPECT_FALSE(ours->protect(packet, &length, 12));
}
