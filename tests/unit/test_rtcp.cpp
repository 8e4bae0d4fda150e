// RTCP compound packets (gst/transport/rtcp.cpp): what we build, and what we
// make of what browsers send.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "transport/rtcp.h"

namespace {

using wb::rtcp::Compound;
using wb::rtcp::Feedback;
using wb::rtcp::ReportBlock;

void put32(std::vector<uint8_t> &v, uint32_t x) {
  for (int shift = 24; shift >= 0; shift -= 8) v.push_back(uint8_t(x >> shift));
}

// A packet header announcing `words` 32-bit words after it.
void header(std::vector<uint8_t> &v, uint8_t pt, uint8_t count, uint16_t words) {
  v.push_back(uint8_t(0x80 | count));
  v.push_back(pt);
  v.push_back(uint8_t(words >> 8));
  v.push_back(uint8_t(words));
}

uint32_t read32(const std::vector<uint8_t> &v, size_t at) {
  return uint32_t(v[at]) << 24 | uint32_t(v[at + 1]) << 16 | uint32_t(v[at + 2]) << 8 | v[at + 3];
}

// Copies `len` bytes to a buffer of exactly that size, so that a read past
// the end leaves the allocation (and trips ASan or valgrind).
bool parse_exact(const uint8_t *data, size_t len, Feedback *out) {
  std::vector<uint8_t> copy(data, data + len);
  return wb::rtcp::parse(len ? copy.data() : nullptr, len, out);
}

// RR with one block, PLI, FIR with two entries, NACK with two FCI entries.
std::vector<uint8_t> hand_written_compound() {
  std::vector<uint8_t> v;
  header(v, 201, 1, 7);
  put32(v, 0x01020304);  // reporter
  put32(v, 0xAAAA0001);  // source
  put32(v, 0x40FFFFFE);  // fraction 64, cumulative -2
  put32(v, 0x0001FFFF);
  put32(v, 321);
  put32(v, 0x12345678);
  put32(v, 0x9ABCDEF0);

  header(v, 206, 1, 2);  // PLI
  put32(v, 0x01020304);
  put32(v, 0xAAAA0001);

  header(v, 206, 4, 6);  // FIR
  put32(v, 0x01020304);
  put32(v, 0);  // unused media SSRC
  put32(v, 0xAAAA0001);
  put32(v, 0x07000000);  // sequence number 7
  put32(v, 0xAAAA0002);
  put32(v, 0x08000000);

  header(v, 205, 1, 4);  // generic NACK
  put32(v, 0x01020304);
  put32(v, 0xAAAA0001);
  put32(v, 100u << 16 | 0x0005);
  put32(v, 65535u << 16 | 0x0001);  // wraps to 0
  return v;
}

}  // namespace

TEST(Rtcp, BuildsWhatTheLoadGeneratorSent) {
  // RR with one block, SDES CNAME "abc", PLI: the bytes of the load
  // generator's own builder before it moved here.
  Compound c(0x11223344);
  ReportBlock b;
  b.ssrc = 0x55667788;
  b.fraction_lost = 3;
  b.cumulative_lost = -1;
  b.highest_seq = 0x00010002;
  b.jitter = 90;
  c.receiver_report({b});
  c.sdes_cname("abc");
  c.pli(0x99AABBCC);
  std::vector<uint8_t> expected = {
      0x81, 201, 0, 7, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 3, 0xFF, 0xFF, 0xFF,
      0, 1, 0, 2, 0, 0, 0, 90, 0, 0, 0, 0, 0, 0, 0, 0,
      0x81, 202, 0, 3, 0x11, 0x22, 0x33, 0x44, 1, 3, 'a', 'b', 'c', 0, 0, 0,
      0x81, 206, 0, 2, 0x11, 0x22, 0x33, 0x44, 0x99, 0xAA, 0xBB, 0xCC};
  EXPECT_EQ(c.bytes(), expected);
}

TEST(Rtcp, BuilderOutputParsesBack) {
  Compound c(0x11223344);
  uint64_t ntp = wb::rtcp::ntp_from_unix_us(1700000000'250000);
  c.sender_report(ntp, 0xCAFEBABE, 1234, 567890);
  std::vector<ReportBlock> blocks(2);
  blocks[0] = {0xA1, 12, 5000, 70000, 33, 0xDEADBEEF, 65536};
  blocks[1] = {0xA2, 0, -8, 2, 0, 0, 0};
  c.receiver_report(blocks);
  c.sdes_cname("viewer-7@load");
  c.pli(0xA1);
  const auto &bytes = c.bytes();
  ASSERT_EQ(bytes.size() % 4, 0u);

  // SR: header, SSRC, NTP, RTP time, packet and octet counts, no blocks.
  EXPECT_EQ(bytes[0], 0x80);
  EXPECT_EQ(bytes[1], 200);
  EXPECT_EQ(read32(bytes, 0) & 0xFFFF, 6u);
  EXPECT_EQ(read32(bytes, 4), 0x11223344u);
  EXPECT_EQ(uint64_t(read32(bytes, 8)) << 32 | read32(bytes, 12), ntp);
  EXPECT_EQ(read32(bytes, 16), 0xCAFEBABEu);
  EXPECT_EQ(read32(bytes, 20), 1234u);
  EXPECT_EQ(read32(bytes, 24), 567890u);

  // SDES after the 28-byte SR and the 56-byte RR.
  size_t sdes = 28 + 56;
  EXPECT_EQ(bytes[sdes], 0x81);
  EXPECT_EQ(bytes[sdes + 1], 202);
  EXPECT_EQ(bytes[sdes + 8], 1);  // CNAME
  EXPECT_EQ(bytes[sdes + 9], 13);
  EXPECT_EQ(std::string(bytes.begin() + sdes + 10, bytes.begin() + sdes + 23), "viewer-7@load");
  EXPECT_EQ(bytes[sdes + 23], 0);

  Feedback f;
  ASSERT_TRUE(wb::rtcp::parse(bytes.data(), bytes.size(), &f));
  ASSERT_EQ(f.reports.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(f.reports[i].reporter_ssrc, 0x11223344u);
    const ReportBlock &got = f.reports[i].block;
    EXPECT_EQ(got.ssrc, blocks[i].ssrc);
    EXPECT_EQ(got.fraction_lost, blocks[i].fraction_lost);
    EXPECT_EQ(got.cumulative_lost, blocks[i].cumulative_lost);
    EXPECT_EQ(got.highest_seq, blocks[i].highest_seq);
    EXPECT_EQ(got.jitter, blocks[i].jitter);
    EXPECT_EQ(got.lsr, blocks[i].lsr);
    EXPECT_EQ(got.dlsr, blocks[i].dlsr);
  }
  EXPECT_EQ(f.pli, std::vector<uint32_t>{0xA1});
  EXPECT_TRUE(f.fir.empty());
  EXPECT_TRUE(f.nacks.empty());
}

TEST(Rtcp, MoreThan31BlocksTakeASecondReceiverReport) {
  std::vector<ReportBlock> blocks(40);
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i].ssrc = uint32_t(1000 + i);
  Compound c(1);
  c.receiver_report(blocks);
  const auto &bytes = c.bytes();
  ASSERT_EQ(bytes.size(), 8 + 31 * 24 + 8 + 9 * 24u);
  EXPECT_EQ(bytes[0], 0x80 | 31);
  EXPECT_EQ(bytes[8 + 31 * 24], 0x80 | 9);
  Feedback f;
  ASSERT_TRUE(wb::rtcp::parse(bytes.data(), bytes.size(), &f));
  ASSERT_EQ(f.reports.size(), 40u);
  for (size_t i = 0; i < 40; ++i) EXPECT_EQ(f.reports[i].block.ssrc, 1000 + i);

  Compound empty(1);
  empty.receiver_report({});
  EXPECT_EQ(empty.bytes(), (std::vector<uint8_t>{0x80, 201, 0, 1, 0, 0, 0, 1}));
}

TEST(Rtcp, LongCnameIsCut) {
  Compound c(1);
  c.sdes_cname(std::string(300, 'x'));
  const auto &bytes = c.bytes();
  EXPECT_EQ(bytes[9], 255);
  EXPECT_EQ(bytes.size(), 8 + 2 + 255 + 3u);  // the end of the list, padded to 32 bits
  Feedback f;
  EXPECT_TRUE(wb::rtcp::parse(bytes.data(), bytes.size(), &f));
}

TEST(Rtcp, NtpTime) {
  constexpr uint64_t k1970 = 2208988800ull << 32;
  EXPECT_EQ(wb::rtcp::ntp_from_unix_us(0), k1970);
  EXPECT_EQ(wb::rtcp::ntp_from_unix_us(1'500000), k1970 + (1ull << 32) + 0x80000000u);
  EXPECT_EQ(wb::rtcp::ntp_from_unix_us(250000), k1970 + 0x40000000u);
  EXPECT_EQ(wb::rtcp::ntp_from_unix_us(-1), k1970 - 1 - 4294u);  // 1 us is 4294.97 fraction units
  // 2036-02-07T06:28:16Z: era 1 starts again at 0.
  EXPECT_EQ(wb::rtcp::ntp_from_unix_us(2085978496'000000), 0u);
}

TEST(Rtcp, ParsesHandWrittenFeedback) {
  auto v = hand_written_compound();
  Feedback f;
  ASSERT_TRUE(parse_exact(v.data(), v.size(), &f));
  ASSERT_EQ(f.reports.size(), 1u);
  EXPECT_EQ(f.reports[0].reporter_ssrc, 0x01020304u);
  EXPECT_EQ(f.reports[0].block.ssrc, 0xAAAA0001u);
  EXPECT_EQ(f.reports[0].block.fraction_lost, 64);
  EXPECT_EQ(f.reports[0].block.cumulative_lost, -2);
  EXPECT_EQ(f.reports[0].block.highest_seq, 0x0001FFFFu);
  EXPECT_EQ(f.reports[0].block.jitter, 321u);
  EXPECT_EQ(f.reports[0].block.lsr, 0x12345678u);
  EXPECT_EQ(f.reports[0].block.dlsr, 0x9ABCDEF0u);
  EXPECT_EQ(f.pli, std::vector<uint32_t>{0xAAAA0001});
  EXPECT_EQ(f.fir, (std::vector<uint32_t>{0xAAAA0001, 0xAAAA0002}));
  ASSERT_EQ(f.nacks.size(), 1u);
  EXPECT_EQ(f.nacks[0].media_ssrc, 0xAAAA0001u);
  EXPECT_EQ(f.nacks[0].seqs, (std::vector<uint16_t>{100, 101, 103, 65535, 0}));
}

TEST(Rtcp, SkipsUnknownTypes) {
  std::vector<uint8_t> v;
  header(v, 202, 1, 2);  // SDES
  put32(v, 5);
  v.insert(v.end(), {1, 1, 'x', 0});
  header(v, 207, 0, 3);  // XR with a made-up block
  put32(v, 5);
  put32(v, 0x04000001);
  put32(v, 0);
  header(v, 205, 15, 4);  // transport-cc
  put32(v, 5);
  put32(v, 0xAAAA0001);
  put32(v, 0x00010002);
  put32(v, 0x00000000);
  header(v, 206, 15, 5);  // REMB
  put32(v, 5);
  put32(v, 0);
  v.insert(v.end(), {'R', 'E', 'M', 'B'});
  put32(v, 0x01000123);
  put32(v, 0xAAAA0001);
  header(v, 204, 0, 2);  // APP
  put32(v, 5);
  v.insert(v.end(), {'t', 'e', 's', 't'});
  header(v, 203, 1, 1);  // BYE
  put32(v, 5);
  header(v, 206, 1, 2);  // and one PLI, after all of them
  put32(v, 5);
  put32(v, 0xAAAA0001);
  Feedback f;
  ASSERT_TRUE(parse_exact(v.data(), v.size(), &f));
  EXPECT_EQ(f.pli, std::vector<uint32_t>{0xAAAA0001});
  EXPECT_TRUE(f.fir.empty());
  EXPECT_TRUE(f.nacks.empty());
  EXPECT_TRUE(f.reports.empty());
}

TEST(Rtcp, PaddingIsNotContent) {
  // A NACK padded by 4 bytes: the padding is no FCI entry.
  std::vector<uint8_t> v;
  header(v, 205, 1, 4);
  v[0] |= 0x20;
  put32(v, 5);
  put32(v, 0xAAAA0001);
  put32(v, 7u << 16);
  put32(v, 4);  // padding: three zeros, then its length
  Feedback f;
  ASSERT_TRUE(parse_exact(v.data(), v.size(), &f));
  ASSERT_EQ(f.nacks.size(), 1u);
  EXPECT_EQ(f.nacks[0].seqs, std::vector<uint16_t>{7});

  v.back() = 17;  // more padding than the packet has
  EXPECT_FALSE(parse_exact(v.data(), v.size(), &f));
  v.back() = 0;
  EXPECT_FALSE(parse_exact(v.data(), v.size(), &f));
}

TEST(Rtcp, RejectsMalformedCompounds) {
  auto good = hand_written_compound();
  Feedback f;
  EXPECT_FALSE(parse_exact(nullptr, 0, &f));

  // Every truncation: only those that end on a packet boundary are whole.
  std::vector<size_t> boundaries = {32, 44, 72, 92};
  for (size_t len = 1; len < good.size(); ++len) {
    bool whole = std::find(boundaries.begin(), boundaries.end(), len) != boundaries.end();
    EXPECT_EQ(parse_exact(good.data(), len, &f), whole) << len;
  }

  auto bad_version = good;
  bad_version[32] = uint8_t((bad_version[32] & 0x3F) | 0x40);
  EXPECT_FALSE(parse_exact(bad_version.data(), bad_version.size(), &f));

  auto too_long = good;
  too_long.resize(32);
  too_long[3] = 8;  // the lone RR claims a word more than there is
  EXPECT_FALSE(parse_exact(too_long.data(), too_long.size(), &f));

  // An RR announcing two blocks with room for one.
  auto short_rr = good;
  short_rr[0] = 0x82;
  EXPECT_FALSE(parse_exact(short_rr.data(), short_rr.size(), &f));

  // A PLI without its media SSRC.
  std::vector<uint8_t> short_pli;
  header(short_pli, 206, 1, 1);
  put32(short_pli, 5);
  EXPECT_FALSE(parse_exact(short_pli.data(), short_pli.size(), &f));

  // A NACK without an FCI entry; a FIR without one.
  std::vector<uint8_t> empty_nack;
  header(empty_nack, 205, 1, 2);
  put32(empty_nack, 5);
  put32(empty_nack, 6);
  EXPECT_FALSE(parse_exact(empty_nack.data(), empty_nack.size(), &f));
  auto empty_fir = empty_nack;
  empty_fir[0] = 0x84;
  empty_fir[1] = 206;
  EXPECT_FALSE(parse_exact(empty_fir.data(), empty_fir.size(), &f));
}

TEST(Rtcp, FalseLeavesNothingBehind) {
  auto good = hand_written_compound();
  Feedback f;
  ASSERT_TRUE(parse_exact(good.data(), good.size(), &f));
  ASSERT_FALSE(f.pli.empty());
  // A whole PLI followed by a broken packet: the PLI is not reported.
  EXPECT_FALSE(parse_exact(good.data() + 32, 12 + 3, &f));
  EXPECT_TRUE(f.pli.empty() && f.fir.empty() && f.nacks.empty() && f.reports.empty());
}

TEST(Rtcp, SurvivesGarbage) {
  std::mt19937 rng(3);
  auto good = hand_written_compound();
  Feedback f;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> v;
    if (i % 2) {
      v.resize(rng() % 128);
      for (auto &b : v) b = uint8_t(rng());
      if (!v.empty() && i % 4 == 1) v[0] = uint8_t(0x80 | (v[0] & 0x3F));
    } else {
      v = good;
      for (int flips = 1 + rng() % 4; flips > 0; --flips) v[rng() % v.size()] ^= uint8_t(1 << (rng() % 8));
      v.resize(rng() % (v.size() + 1));
    }
    parse_exact(v.data(), v.size(), &f);
    for (const auto &nack : f.nacks) EXPECT_LE(nack.seqs.size(), 17 * v.size() / 4);
  }
}

// RFC 3550 6.4.1's own example (figure 2): our SR left at 46853.125 s
// (LSR 0xb705:2000), the receiver held it 5.250 s (DLSR 0x0005:4000) and its
// report arrived at 46864.500 s (0xb710:8000): 6.125 s (0x0006:2000).
TEST(Rtcp, RoundTripIsTheRfcExample) {
  ReportBlock block;
  block.lsr = 0xb7052000;
  block.dlsr = 0x00054000;
  const uint64_t arrival = uint64_t(0x1234b7108000abcd);  // only the middle 32 bits count
  EXPECT_EQ(wb::rtcp::round_trip(block, arrival), 0x00062000);
}

TEST(Rtcp, RoundTripNeedsLsrAndIsNeverNegative) {
  ReportBlock block;
  block.dlsr = 0x10000;
  EXPECT_EQ(wb::rtcp::round_trip(block, uint64_t(0x00200000) << 16), -1) << "no LSR: no SR of ours reached it";
  block.lsr = 0x00200000;
  // Arrived "before" the SR it echoes plus the time held: not our report.
  EXPECT_EQ(wb::rtcp::round_trip(block, uint64_t(0x00200000) << 16), -1);
  EXPECT_EQ(wb::rtcp::round_trip(block, uint64_t(0x00210000) << 16), 0);
}

TEST(Rtcp, RoundTripAcrossTheWrapOfTheMiddleBits) {
  ReportBlock block;
  block.lsr = 0xFFFF8000;  // half a second before the middle 32 bits wrap
  block.dlsr = 0x00004000;
  EXPECT_EQ(wb::rtcp::round_trip(block, uint64_t(0x00002000) << 16), 0x6000);  // 0.375 s
}

// The round trip against the clock our sender reports use, as the
// transport does it: an SR "sent" 300 ms ago, held 100 ms.
TEST(Rtcp, RoundTripFromOurNtpClock) {
  const int64_t now_us = 1700000000'000000;
  ReportBlock block;
  block.lsr = uint32_t(wb::rtcp::ntp_from_unix_us(now_us - 300000) >> 16);
  block.dlsr = 6554;  // 100 ms in 1/65536 s
  const int64_t rtt = wb::rtcp::round_trip(block, wb::rtcp::ntp_from_unix_us(now_us));
  EXPECT_NEAR(rtt * 1000.0 / 65536, 200.0, 0.1);
}

TEST(Rtcp, ReceptionKeepsTheLatestBlockAndRoundTrip) {
  wb::rtcp::Reception reception;
  EXPECT_EQ(reception.reports, 0u);
  EXPECT_EQ(reception.rtt, -1);
  ReportBlock first;
  first.ssrc = 7;
  first.highest_seq = 100;
  first.fraction_lost = 64;
  first.cumulative_lost = 3;
  first.jitter = 90;
  const uint64_t arrival = uint64_t(0x00030000) << 16;
  reception.add(first, arrival);  // before any SR of ours: no LSR
  EXPECT_EQ(reception.reports, 1u);
  EXPECT_EQ(reception.latest.highest_seq, 100u);
  EXPECT_EQ(reception.rtt, -1);

  ReportBlock second = first;
  second.highest_seq = 200;
  second.cumulative_lost = -1;  // duplicates can make it negative
  second.lsr = 0x00020000;
  second.dlsr = 0x00008000;
  reception.add(second, arrival);
  EXPECT_EQ(reception.reports, 2u);
  EXPECT_EQ(reception.latest.highest_seq, 200u);
  EXPECT_EQ(reception.latest.cumulative_lost, -1);
  EXPECT_EQ(reception.rtt, 0x8000);  // 0.5 s

  ReportBlock third = second;
  third.highest_seq = 300;
  third.lsr = 0;  // cannot happen after one with LSR, but must not forget the round trip
  reception.add(third, arrival);
  EXPECT_EQ(reception.reports, 3u);
  EXPECT_EQ(reception.latest.highest_seq, 300u);
  EXPECT_EQ(reception.rtt, 0x8000);
}

// A REMB as Chromium sends it with its receiver report: 500 kbit/s for
// two SSRCs (exponent 1, mantissa 250000).
TEST(Rtcp, RembGivesTheReceiversEstimateAndItsSsrcs) {
  std::vector<uint8_t> v;
  header(v, 201, 0, 1);
  put32(v, 0x0a0b0c0d);
  header(v, 206, 15, 6);
  put32(v, 0x0a0b0c0d);
  put32(v, 0);
  for (char c : std::string("REMB")) v.push_back(uint8_t(c));
  v.push_back(2);
  v.push_back(uint8_t(1 << 2 | (250000 >> 16)));
  v.push_back(uint8_t(250000 >> 8));
  v.push_back(uint8_t(250000));
  put32(v, 0x11111111);
  put32(v, 0x22222222);
  Feedback f;
  ASSERT_TRUE(parse_exact(v.data(), v.size(), &f));
  EXPECT_EQ(f.remb_bitrate, 500000u);
  EXPECT_EQ(f.remb_ssrcs, (std::vector<uint32_t>{0x11111111, 0x22222222}));
  // Claiming three SSRCs with room for two: malformed, nothing taken.
  v[v.size() - 12] = 3;
  EXPECT_FALSE(parse_exact(v.data(), v.size(), &f));
  EXPECT_EQ(f.remb_bitrate, 0u);
  // Other application feedback is skipped.
  v[v.size() - 12] = 2;
  v[v.size() - 16] = 'X';
  ASSERT_TRUE(parse_exact(v.data(), v.size(), &f));
  EXPECT_EQ(f.remb_bitrate, 0u);
}
