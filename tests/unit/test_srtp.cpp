// Our SRTP protection (gst/transport/srtpcontext.cpp) must produce, byte for
// byte, what libsrtp2 produces for the same keys: the viewer decrypts with
// libsrtp (Chromium, webrtcbin) and webrtcbin sends the same packets again
// once a second, which only works if the two are identical.
#include <gtest/gtest.h>
#include <srtp2/srtp.h>

#include <cstring>
#include <random>
#include <vector>

#include "srtp_reference.h"
#include "transport/srtcpcontext.h"
#include "transport/srtpcontext.h"

namespace {

using wb::SrtpProfile;
constexpr SrtpProfile kCm80 = SrtpProfile::Aes128CmSha1_80, kCm32 = SrtpProfile::Aes128CmSha1_32,
                      kGcm = SrtpProfile::AeadAes128Gcm;

using srtp_test::make_packet;
using srtp_test::Reference;

void expect_same_as_libsrtp(SrtpProfile profile, uint16_t first_seq, size_t count, size_t extension_words) {
  std::mt19937 rng(1234 + int(profile) + first_seq);
  std::vector<uint8_t> key(16 + wb::srtp_profile_sizes(profile).salt);
  for (auto &b : key) b = uint8_t(rng());
  uint32_t ssrc = rng();
  Reference reference(key, profile);
  auto ours = wb::SrtpContext::create(profile, key.data());
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

TEST(Srtp, Sha1_80MatchesLibsrtp) { expect_same_as_libsrtp(kCm80, 1000, 200, 0); }
TEST(Srtp, Sha1_32MatchesLibsrtp) { expect_same_as_libsrtp(kCm32, 1000, 200, 0); }
TEST(Srtp, GcmMatchesLibsrtp) { expect_same_as_libsrtp(kGcm, 1000, 200, 0); }
TEST(Srtp, HeaderExtensionStaysInTheClear) { expect_same_as_libsrtp(kCm80, 7, 50, 2); }
// GCM authenticates the header, extension included, as associated data.
TEST(Srtp, GcmHeaderExtensionIsAuthenticatedInTheClear) { expect_same_as_libsrtp(kGcm, 7, 50, 2); }
// The rollover counter enters the IV and the tag from the first wrap on.
TEST(Srtp, SequenceWrapMatchesLibsrtp) { expect_same_as_libsrtp(kCm80, 65500, 300, 0); }
TEST(Srtp, Sha1_32SequenceWrapMatchesLibsrtp) { expect_same_as_libsrtp(kCm32, 65500, 300, 0); }
TEST(Srtp, GcmSequenceWrapMatchesLibsrtp) { expect_same_as_libsrtp(kGcm, 65500, 300, 0); }

namespace {

// One packet of a stream sent through our context to a libsrtp2 receiver
// (a viewer): `lost` ones never reach it; `expected` is what its
// srtp_unprotect says.
struct Sent {
  uint16_t seq;
  bool lost;
  srtp_err_status_t expected;
};

void expect_received_by_libsrtp(const std::vector<Sent> &stream, SrtpProfile profile = kCm80) {
  std::mt19937 rng(99);
  std::vector<uint8_t> key(30);
  for (auto &b : key) b = uint8_t(rng());
  const uint32_t ssrc = rng();
  Reference viewer(key, profile, ssrc_any_inbound);
  auto ours = wb::SrtpContext::create(profile, key.data());
  ASSERT_TRUE(ours);
  for (const Sent &sent : stream) {
    size_t header = 0;
    const auto plain = make_packet(rng, sent.seq, ssrc, 100, 0, &header);
    std::vector<uint8_t> packet(plain.size() + wb::SrtpContext::kMaxTagLength);
    memcpy(packet.data(), plain.data(), plain.size());
    size_t length = plain.size();
    ASSERT_TRUE(ours->protect(packet.data(), &length, header));
    if (sent.lost) continue;
    int their_length = int(length);
    ASSERT_EQ(srtp_unprotect(viewer.session, packet.data(), &their_length), sent.expected) << "seq " << sent.seq;
    if (sent.expected != srtp_err_status_ok) continue;
    ASSERT_EQ(size_t(their_length), plain.size()) << "seq " << sent.seq;
    ASSERT_EQ(0, memcmp(packet.data(), plain.data(), plain.size())) << "seq " << sent.seq;
  }
}

}  // namespace

// A NACK answered across a wrap, from the fan-out's history with the same
// sequence number through the viewer's context: the packet from before the
// wrap keeps the old rollover counter, the ones after go on with the new.
TEST(Srtp, RetransmissionAcrossAWrapDecryptsWithLibsrtp) {
  for (SrtpProfile profile : {kCm80, kGcm}) {
    SCOPED_TRACE(wb::srtp_profile_name(profile));
    expect_received_by_libsrtp({{65520, false, srtp_err_status_ok},
                                {65530, true, srtp_err_status_ok},  // lost, NACKed
                                {93, false, srtp_err_status_ok},
                                {65530, false, srtp_err_status_ok},  // the retransmission
                                {951, false, srtp_err_status_ok},
                                {952, false, srtp_err_status_ok}},
                               profile);
  }
}

// The viewer's first packet sent again after the wrap (its NACK crossed the
// original): a replay for libsrtp, and the stream goes on.
TEST(Srtp, FirstPacketResentAfterAWrapIsAReplay) {
  for (SrtpProfile profile : {kCm80, kGcm}) {
    SCOPED_TRACE(wb::srtp_profile_name(profile));
    expect_received_by_libsrtp({{65520, false, srtp_err_status_ok},
                                {93, false, srtp_err_status_ok},
                                {65520, false, srtp_err_status_replay_fail},
                                {951, false, srtp_err_status_ok},
                                {952, false, srtp_err_status_ok}},
                               profile);
  }
}

TEST(Srtp, RefusesAShortPacket) {
  uint8_t key[30] = {};
  for (SrtpProfile profile : {kCm80, kCm32, kGcm}) {
    auto ours = wb::SrtpContext::create(profile, key);
    ASSERT_TRUE(ours);
    EXPECT_EQ(ours->tag_length(), wb::srtp_profile_sizes(profile).rtp_tag);
    uint8_t packet[64] = {0x80};
    size_t length = 8;
    EXPECT_FALSE(ours->protect(packet, &length, 12));
    EXPECT_EQ(length, 8u);
  }
}

// RFC 7714's test vectors (16.1.1, 17.1: AEAD_AES_128_GCM with the session
// key and salt given), as hex.
namespace {

std::vector<uint8_t> hex(const char *text) {
  std::vector<uint8_t> out;
  for (const char *p = text; *p; ++p) {
    if (*p == ' ') continue;
    out.push_back(uint8_t(std::stoi(std::string(p, 2), nullptr, 16)));
    ++p;
  }
  return out;
}

const auto kRfcKey = hex("000102030405060708090a0b0c0d0e0f");
const auto kRfcSalt = hex("517569642070726f2071756f");

}  // namespace

TEST(Srtp, GcmMatchesRfc7714) {
  const auto plain = hex(
      "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976 69736120 696e2070 61727465 "
      "73207472 6573");
  const auto expected = hex(
      "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a 51c7d19b "
      "36de3adf 8833 899d7f27 beb16a91 52cf765e e4390cce");
  auto ours = wb::SrtpContext::create_gcm_with_session_keys(kRfcKey.data(), kRfcSalt.data());
  ASSERT_TRUE(ours);
  std::vector<uint8_t> packet(plain.size() + wb::SrtpContext::kMaxTagLength);
  memcpy(packet.data(), plain.data(), plain.size());
  size_t length = plain.size();
  ASSERT_TRUE(ours->protect(packet.data(), &length, 12));
  packet.resize(length);
  EXPECT_EQ(packet, expected);
}

// SRTCP (gst/transport/srtcpcontext.cpp) against libsrtp2 both ways: the
// viewer's libsrtp must accept our sender reports, we must accept its
// receiver reports and feedback.
namespace {

std::vector<uint8_t> make_key(std::mt19937 &rng) {
  std::vector<uint8_t> key(30);
  for (auto &b : key) b = uint8_t(rng());
  return key;
}

// A receiver report with `words` 32-bit words after the header: a sender
// SSRC, then random bytes (the content is opaque to SRTCP).
std::vector<uint8_t> make_rtcp(std::mt19937 &rng, uint32_t ssrc, size_t words) {
  std::vector<uint8_t> p(4 + 4 * words);
  p[0] = 0x80;
  p[1] = 201;
  p[2] = uint8_t(words >> 8);
  p[3] = uint8_t(words);
  for (int i = 0; i < 4; ++i) p[4 + i] = uint8_t(ssrc >> (24 - 8 * i));
  for (size_t i = 8; i < p.size(); ++i) p[i] = uint8_t(rng());
  return p;
}

std::vector<uint8_t> ours_protect(wb::SrtcpContext &ours, const std::vector<uint8_t> &plain) {
  std::vector<uint8_t> out(plain.size() + ours.trailer_length());
  memcpy(out.data(), plain.data(), plain.size());
  size_t length = plain.size();
  EXPECT_TRUE(ours.protect(out.data(), &length));
  out.resize(length);
  return out;
}

std::vector<uint8_t> libsrtp_protect(Reference &reference, const std::vector<uint8_t> &plain) {
  std::vector<uint8_t> out(plain.size() + SRTP_MAX_TRAILER_LEN + 4);
  memcpy(out.data(), plain.data(), plain.size());
  int length = int(plain.size());
  EXPECT_EQ(srtp_protect_rtcp(reference.session, out.data(), &length), srtp_err_status_ok);
  out.resize(size_t(length));
  return out;
}

bool ours_unprotect(wb::SrtcpContext &ours, std::vector<uint8_t> packet, std::vector<uint8_t> *plain = nullptr) {
  size_t length = packet.size();
  if (!ours.unprotect(packet.data(), &length)) return false;
  packet.resize(length);
  if (plain) *plain = packet;
  return true;
}

// E|index: before the tag (CM), after it (GCM, RFC 7714 9).
uint32_t trailer_index(const std::vector<uint8_t> &protected_packet, SrtpProfile profile = kCm80) {
  const uint8_t *t = protected_packet.data() + protected_packet.size() - (profile == kGcm ? 4 : 14);
  return uint32_t(t[0]) << 24 | uint32_t(t[1]) << 16 | uint32_t(t[2]) << 8 | t[3];
}

void expect_srtcp_same_as_libsrtp(SrtpProfile profile) {
  std::mt19937 rng(99 + int(profile));
  auto key = make_key(rng);
  uint32_t ssrc = rng();
  Reference theirs(key, profile);
  auto ours = wb::SrtcpContext::create(profile, key.data());
  ASSERT_TRUE(ours);
  for (uint32_t i = 1; i <= 100; ++i) {
    auto plain = make_rtcp(rng, ssrc, 1 + rng() % 60);
    auto mine = ours_protect(*ours, plain);
    auto reference = libsrtp_protect(theirs, plain);
    ASSERT_EQ(mine.size(), plain.size() + ours->trailer_length());
    ASSERT_EQ(mine, reference) << "packet " << i;
    EXPECT_EQ(trailer_index(mine, profile), 0x80000000 | i);
  }
}

// libsrtp's inbound session checks ours, we check libsrtp's outbound one.
void expect_round_trips(SrtpProfile profile) {
  std::mt19937 rng(7 + int(profile));
  auto key = make_key(rng);
  uint32_t ssrc = rng();
  Reference their_receiver(key, profile, ssrc_any_inbound);
  Reference their_sender(key, profile, ssrc_any_outbound);
  auto our_sender = wb::SrtcpContext::create(profile, key.data());
  auto our_receiver = wb::SrtcpContext::create(profile, key.data());
  ASSERT_TRUE(our_sender && our_receiver);
  for (int i = 0; i < 50; ++i) {
    auto plain = make_rtcp(rng, ssrc, 1 + rng() % 60);

    auto packet = ours_protect(*our_sender, plain);
    int length = int(packet.size());
    ASSERT_EQ(srtp_unprotect_rtcp(their_receiver.session, packet.data(), &length), srtp_err_status_ok) << i;
    packet.resize(size_t(length));
    EXPECT_EQ(packet, plain) << i;

    std::vector<uint8_t> decrypted;
    ASSERT_TRUE(ours_unprotect(*our_receiver, libsrtp_protect(their_sender, plain), &decrypted)) << i;
    EXPECT_EQ(decrypted, plain) << i;
  }
}

}  // namespace

TEST(Srtcp, GcmMatchesRfc7714) {
  const auto plain = hex(
      "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef deadbeef "
      "deadbeef deadbeef");
  const auto sealed = hex(
      "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1 730d6fda 4ce09b46 "
      "86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4");
  ASSERT_EQ(sealed.size(), plain.size() + 20);
  // Our protect() counts its index from 1: the vector's 0x5d4 is checked by
  // opening it.
  auto ours = wb::SrtcpContext::create_gcm_with_session_keys(kRfcKey.data(), kRfcSalt.data());
  ASSERT_TRUE(ours);
  EXPECT_EQ(ours->trailer_length(), 20u);
  std::vector<uint8_t> opened;
  ASSERT_TRUE(ours_unprotect(*ours, sealed, &opened));
  EXPECT_EQ(opened, plain);
  EXPECT_FALSE(ours_unprotect(*ours, sealed));  // a replay now
  // Every byte counts: header and SSRC (associated data), ciphertext, tag,
  // E flag and index. A fresh receiver for each, so that the tag refuses
  // them, not the replay window.
  const size_t tag = plain.size(), index = sealed.size() - 4;
  for (size_t flip : {size_t(1), size_t(7), size_t(8), size_t(30), tag - 1, tag, tag + 15, index, index + 3}) {
    auto receiver = wb::SrtcpContext::create_gcm_with_session_keys(kRfcKey.data(), kRfcSalt.data());
    ASSERT_TRUE(receiver);
    auto bad = sealed;
    bad[flip] ^= flip == index ? 0x80 : 0x01;
    EXPECT_FALSE(ours_unprotect(*receiver, bad)) << "byte " << flip;
    EXPECT_TRUE(ours_unprotect(*receiver, sealed)) << "byte " << flip;
  }
}

TEST(Srtcp, MatchesLibsrtp) { expect_srtcp_same_as_libsrtp(kCm80); }
// DTLS-SRTP's _32 profile shortens only the RTP tag.
TEST(Srtcp, MatchesLibsrtpWhenRtpTagIs32) { expect_srtcp_same_as_libsrtp(kCm32); }
TEST(Srtcp, GcmMatchesLibsrtp) { expect_srtcp_same_as_libsrtp(kGcm); }
TEST(Srtcp, RoundTripsWithLibsrtp) { expect_round_trips(kCm80); }
TEST(Srtcp, RoundTripsWithLibsrtpWhenRtpTagIs32) { expect_round_trips(kCm32); }
TEST(Srtcp, GcmRoundTripsWithLibsrtp) { expect_round_trips(kGcm); }

// E=0: only authenticated (GCM: the whole compound is associated data).
TEST(Srtcp, AcceptsAnUnencryptedPacket) {
  for (SrtpProfile profile : {kCm80, kGcm}) {
    SCOPED_TRACE(wb::srtp_profile_name(profile));
    std::mt19937 rng(5);
    auto key = make_key(rng);
    Reference theirs(key, profile, ssrc_any_outbound, false);
    auto ours = wb::SrtcpContext::create(profile, key.data());
    ASSERT_TRUE(ours);
    auto plain = make_rtcp(rng, 42, 10);
    auto packet = libsrtp_protect(theirs, plain);
    EXPECT_EQ(trailer_index(packet, profile) & 0x80000000, 0u);
    EXPECT_EQ(0, memcmp(packet.data(), plain.data(), plain.size()));
    std::vector<uint8_t> decrypted;
    ASSERT_TRUE(ours_unprotect(*ours, packet, &decrypted));
    EXPECT_EQ(decrypted, plain);
    // A flipped bit in the clear body is caught by the tag.
    packet[12] ^= 0x01;
    EXPECT_FALSE(ours_unprotect(*ours, packet));
  }
}

TEST(Srtcp, RejectsAFlippedBit) {
  for (SrtpProfile profile : {kCm80, kGcm}) {
    SCOPED_TRACE(wb::srtp_profile_name(profile));
    std::mt19937 rng(11);
    auto key = make_key(rng);
    auto sender = wb::SrtcpContext::create(profile, key.data());
    auto receiver = wb::SrtcpContext::create(profile, key.data());
    ASSERT_TRUE(sender && receiver);
    auto packet = ours_protect(*sender, make_rtcp(rng, 1234, 12));
    struct Bit {
      size_t byte;
      uint8_t mask;
    };
    // E|index: before the tag (CM) or last (GCM).
    size_t index = packet.size() - (profile == kGcm ? 4 : 14);
    // Header, sender SSRC, encrypted body, E flag, index, tag.
    for (Bit bit : {Bit{1, 0x01}, Bit{5, 0x10}, Bit{20, 0x04}, Bit{index, 0x80}, Bit{index + 3, 0x01},
                    Bit{profile == kGcm ? index - 1 : packet.size() - 1, 0x80}}) {
      auto bad = packet;
      bad[bit.byte] ^= bit.mask;
      EXPECT_FALSE(ours_unprotect(*receiver, bad)) << "byte " << bit.byte;
    }
    // Nothing rejected entered the replay window.
    EXPECT_TRUE(ours_unprotect(*receiver, packet));
  }
}

TEST(Srtcp, RejectsAReplay) {
  for (SrtpProfile profile : {kCm80, kGcm}) {
    SCOPED_TRACE(wb::srtp_profile_name(profile));
    std::mt19937 rng(13);
    auto key = make_key(rng);
    auto sender = wb::SrtcpContext::create(profile, key.data());
    auto receiver = wb::SrtcpContext::create(profile, key.data());
    ASSERT_TRUE(sender && receiver);
    std::vector<std::vector<uint8_t>> sent;
    for (int i = 0; i < 100; ++i) sent.push_back(ours_protect(*sender, make_rtcp(rng, 77, 6)));

    EXPECT_TRUE(ours_unprotect(*receiver, sent[0]));
    EXPECT_FALSE(ours_unprotect(*receiver, sent[0]));
    // Late but new, within the window: accepted once.
    EXPECT_TRUE(ours_unprotect(*receiver, sent[10]));
    EXPECT_TRUE(ours_unprotect(*receiver, sent[5]));
    EXPECT_FALSE(ours_unprotect(*receiver, sent[5]));
    EXPECT_FALSE(ours_unprotect(*receiver, sent[10]));
    // Index 100 puts index 36 (sent[35]) 64 behind: too old to tell.
    EXPECT_TRUE(ours_unprotect(*receiver, sent[99]));
    EXPECT_FALSE(ours_unprotect(*receiver, sent[35]));
    EXPECT_TRUE(ours_unprotect(*receiver, sent[36]));
  }
}

// libsrtp (and so a browser) counts an index per sender SSRC: its second
// SSRC's first packet has index 1 again and is no replay.
TEST(Srtcp, EachSenderSsrcHasItsOwnIndex) {
  for (SrtpProfile profile : {kCm80, kGcm}) {
    SCOPED_TRACE(wb::srtp_profile_name(profile));
    std::mt19937 rng(17);
    auto key = make_key(rng);
    Reference theirs(key, profile);
    auto ours = wb::SrtcpContext::create(profile, key.data());
    ASSERT_TRUE(ours);
    for (int i = 0; i < 3; ++i) {
      for (uint32_t ssrc : {1u, 2u}) {
        auto packet = libsrtp_protect(theirs, make_rtcp(rng, ssrc, 4));
        EXPECT_EQ(trailer_index(packet, profile), 0x80000000u | uint32_t(i + 1));
        EXPECT_TRUE(ours_unprotect(*ours, packet)) << "ssrc " << ssrc << " packet " << i;
        EXPECT_FALSE(ours_unprotect(*ours, packet)) << "ssrc " << ssrc << " packet " << i;
      }
    }
  }
}

TEST(Srtcp, RefusesShortPackets) {
  uint8_t key[30] = {};
  for (SrtpProfile profile : {kCm80, kCm32, kGcm}) {
    SCOPED_TRACE(wb::srtp_profile_name(profile));
    auto ours = wb::SrtcpContext::create(profile, key);
    ASSERT_TRUE(ours);
    EXPECT_EQ(ours->trailer_length(), 4 + wb::srtp_profile_sizes(profile).rtcp_tag);
    uint8_t packet[64] = {0x80, 201};
    size_t length = 4;
    EXPECT_FALSE(ours->protect(packet, &length));
    length = 8 + ours->trailer_length() - 1;
    EXPECT_FALSE(ours->unprotect(packet, &length));
    length = 0;
    EXPECT_FALSE(ours->unprotect(packet, &length));
  }
}
