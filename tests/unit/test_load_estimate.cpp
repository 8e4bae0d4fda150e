// The load generator's emulated receive-side estimate (tools/load/estimate.cpp)
// and the REMB that carries it, read back by the server's own RTCP parser.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "../../tools/load/estimate.h"
#include "transport/rtcp.h"

namespace {

using load::EstimateRule;
using load::next_estimate;
using load::ReceiveEstimator;

constexpr int64_t kSecond = 1000000000;

TEST(LoadEstimate, WithoutLossItOffersHalfAgainWhatArrived) {
  const EstimateRule rule;
  EXPECT_EQ(next_estimate(0, 200000, 0, rule), 300000u);
  EXPECT_EQ(next_estimate(5000000, 800000, 0.019, rule), 1200000u);  // the last estimate does not matter
}

TEST(LoadEstimate, NeverAboveTheCeiling) {
  EstimateRule rule;
  rule.ceiling = 1000000;
  EXPECT_EQ(next_estimate(0, 2500000, 0, rule), 1000000u);
  EXPECT_EQ(next_estimate(0, 2500000, 0.5, rule), 1000000u);
  EXPECT_EQ(next_estimate(5000000, 2500000, 0.05, rule), 1000000u);
}

TEST(LoadEstimate, HeavyLossGivesLessThanArrived) {
  const EstimateRule rule;
  EXPECT_EQ(next_estimate(3000000, 1000000, 0.10, rule), 950000u);
  // A 1 Mbit/s link under a 2.5 Mbit/s layer: 60 % lost.
  EXPECT_EQ(next_estimate(3000000, 1000000, 0.6, rule), 700000u);
  EXPECT_EQ(next_estimate(3000000, 1000000, 1.0, rule), 500000u);
  EXPECT_EQ(next_estimate(3000000, 1000000, 3.0, rule), 500000u);  // nonsense loss is at most all
}

TEST(LoadEstimate, SomeLossHoldsTheEstimate) {
  const EstimateRule rule;
  EXPECT_EQ(next_estimate(1200000, 800000, 0.02, rule), 1200000u);
  EXPECT_EQ(next_estimate(1200000, 300000, 0.099, rule), 1200000u);
  // Nothing to hold yet: what arrived, which the link did carry.
  EXPECT_EQ(next_estimate(0, 800000, 0.05, rule), 800000u);
}

TEST(LoadEstimate, TheEstimatorMeasuresEachIntervalFromTheTotals) {
  ReceiveEstimator e{EstimateRule{}};
  e.start(10 * kSecond);
  EXPECT_EQ(e.estimate(), 0u);
  // 1 s: 100 packets, 125,000 bytes (1 Mbit/s), none lost.
  e.update(11 * kSecond, 125000, 100, 100);
  EXPECT_EQ(e.estimate(), 1500000u);
  // 2 s: 200 more packets of 250,000 bytes (1 Mbit/s again), 25 missing (11 %).
  e.update(13 * kSecond, 375000, 300, 325);
  EXPECT_NEAR(double(e.estimate()), 1e6 * (1 - 0.5 * 25 / 225.0), 1.0);
  const uint64_t after_loss = e.estimate();
  // 5 % loss: held.
  e.update(14 * kSecond, 375000 + 95000, 395, 425);
  EXPECT_EQ(e.estimate(), after_loss);
  // Nothing sent (video paused): held, and the next interval starts here.
  e.update(15 * kSecond, 470000, 395, 425);
  EXPECT_EQ(e.estimate(), after_loss);
  // Duplicates (more received than expected) are no loss.
  e.update(16 * kSecond, 470000 + 25000, 416, 445);
  EXPECT_EQ(e.estimate(), 300000u);
}

TEST(LoadEstimate, NothingIsSaidInTheFirstFiveSecondsAsLibwebrtcWithoutOveruse) {
  ReceiveEstimator e{EstimateRule{}};
  e.start(10 * kSecond);
  e.update(11 * kSecond, 125000, 100, 100);
  EXPECT_EQ(e.estimate(), 1500000u);
  EXPECT_EQ(e.to_send(11 * kSecond), 0u);
  EXPECT_EQ(e.to_send(15 * kSecond - 1), 0u);
  EXPECT_EQ(e.to_send(15 * kSecond), 1500000u);
}

// The REMB the generator appends to its compound, parsed by what the server
// runs on every viewer's RTCP (gst/transport/rtcp.cpp).
wb::rtcp::Feedback parse_with_remb(uint64_t bits_per_second, const std::vector<uint32_t> &ssrcs) {
  wb::rtcp::Compound compound(0x0a0b0c0d);
  wb::rtcp::ReportBlock block;
  block.ssrc = ssrcs.empty() ? 1 : ssrcs[0];
  compound.receiver_report({block});
  compound.sdes_cname("load");
  std::vector<uint8_t> bytes = compound.bytes();
  load::append_remb(&bytes, 0x0a0b0c0d, bits_per_second, ssrcs);
  wb::rtcp::Feedback feedback;
  EXPECT_TRUE(wb::rtcp::parse(bytes.data(), bytes.size(), &feedback));
  return feedback;
}

TEST(LoadEstimate, RembBytesAreChromiums) {
  // Chromium's 500 kbit/s for two SSRCs (tests/unit/test_rtcp.cpp): exponent 1, mantissa 250000.
  std::vector<uint8_t> v;
  load::append_remb(&v, 0x0a0b0c0d, 500000, {0x11111111, 0x22222222});
  const std::vector<uint8_t> expected = {0x8f, 206,  0,    6,    0x0a, 0x0b, 0x0c, 0x0d, 0,    0,    0,    0,
                                         'R',  'E',  'M',  'B',  2,    0x07, 0xd0, 0x90, 0x11, 0x11, 0x11, 0x11,
                                         0x22, 0x22, 0x22, 0x22};
  EXPECT_EQ(v, expected);
}

TEST(LoadEstimate, TheServersParserReadsTheRembBack) {
  auto f = parse_with_remb(1234567, {0xDEADBEEF});
  // 1234567 needs 21 bits: exponent 3, and the low 3 bits go.
  EXPECT_EQ(f.remb_bitrate, 1234567u & ~7u);
  EXPECT_EQ(f.remb_ssrcs, std::vector<uint32_t>{0xDEADBEEF});
  ASSERT_EQ(f.reports.size(), 1u);  // the compound around it is intact
  EXPECT_EQ(f.reports[0].block.ssrc, 0xDEADBEEFu);

  // Small rates are exact; large ones within the mantissa's 18 bits, never above.
  for (uint64_t rate : {0ull, 1ull, 262143ull, 262144ull, 300000ull, 2500000ull, 30000000ull, 1ull << 40}) {
    auto g = parse_with_remb(rate, {7, 8, 9});
    EXPECT_LE(g.remb_bitrate, rate) << rate;
    EXPECT_GE(double(g.remb_bitrate), double(rate) * (1 - 1.0 / (1 << 17))) << rate;
    EXPECT_EQ(g.remb_ssrcs, (std::vector<uint32_t>{7, 8, 9}));
  }
}

}  // namespace
