// The last packets of one shared stream, by sequence number: what a viewer's
// NACK is answered from. Viewers receive the shared sequence numbers
// unchanged, so one history serves every viewer of a fan-out; each packet is
// kept once, not once per viewer. Used by the fan-out's streaming thread
// only (it records and it retransmits), so it needs no lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "transport/srtpsender.h"

namespace wb {

class PacketHistory {
 public:
  // About 3 s of 800 kbps video, 20 s of Opus: far longer than a NACK is
  // worth answering, and a fixed 1.5 MB per fan-out.
  static constexpr size_t kPackets = 1024;

  PacketHistory();

  // Keeps a copy of `packet`, replacing the one kPackets sequence numbers
  // before it. Packets larger than a slot are not kept.
  void record(const RtpPacketRef &packet);
  // The packet with sequence number `seq` as it was recorded, or nullptr
  // when it is not (or no longer) kept. Valid until the next record().
  const RtpPacketRef *find(uint16_t seq) const;

 private:
  struct Slot {
    bool used = false;
    uint16_t seq = 0;
    std::vector<uint8_t> bytes;
    RtpPacketRef ref{};
  };
  std::vector<Slot> slots_;
};

}  // namespace wb
