// The fan-out's shared packet history: what NACKs are answered from.
#include <gtest/gtest.h>

#include <vector>

#include "fanout/packethistory.h"

using wb::PacketHistory;
using wb::RtpPacketRef;

namespace {

std::vector<uint8_t> packet(uint16_t seq, size_t size, uint8_t fill) {
  std::vector<uint8_t> p(size, fill);
  p[0] = 0x80;
  p[1] = 96;
  p[2] = uint8_t(seq >> 8);
  p[3] = uint8_t(seq);
  return p;
}

}  // namespace

TEST(PacketHistory, FindsWhatWasRecordedByItsSequenceNumber) {
  PacketHistory history;
  auto a = packet(65535, 1200, 0xaa);
  auto b = packet(0, 300, 0xbb);  // across the wrap
  history.record({a.data(), a.size(), 12, 1000});
  history.record({b.data(), b.size(), 12, 2000});
  a.assign(a.size(), 0);  // the history holds its own copy

  const RtpPacketRef *found = history.find(65535);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->size, 1200u);
  EXPECT_EQ(found->header_len, 12u);
  EXPECT_EQ(found->sampled_us, 1000);
  EXPECT_EQ(found->data[100], 0xaa);
  ASSERT_NE(history.find(0), nullptr);
  EXPECT_EQ(history.find(0)->data[299], 0xbb);
  EXPECT_EQ(history.find(1), nullptr);  // never sent
}

TEST(PacketHistory, ForgetsWhatIsOlderThanItsLength) {
  PacketHistory history;
  for (uint32_t seq = 100; seq < 100 + PacketHistory::kPackets + 1; ++seq) {
    auto p = packet(uint16_t(seq), 200, uint8_t(seq));
    history.record({p.data(), p.size(), 12, 0});
  }
  EXPECT_EQ(history.find(100), nullptr);  // its slot now holds 100 + kPackets
  ASSERT_NE(history.find(101), nullptr);
  ASSERT_NE(history.find(uint16_t(100 + PacketHistory::kPackets)), nullptr);
}

TEST(PacketHistory, KeepsNothingItCannotHold) {
  PacketHistory history;
  auto runt = packet(7, 12, 0);
  runt.resize(8);
  history.record({runt.data(), runt.size(), 8, 0});
  auto jumbo = packet(8, 9000, 0);
  history.record({jumbo.data(), jumbo.size(), 12, 0});
  EXPECT_EQ(history.find(7), nullptr);
  EXPECT_EQ(history.find(8), nullptr);
}
