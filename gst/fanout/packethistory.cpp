#include "packethistory.h"

#include <cstring>

namespace wb {

namespace {
// Our payloaders' MTU is 1200; anything up to an Ethernet frame fits.
constexpr size_t kSlotBytes = 1500;
}  // namespace

PacketHistory::PacketHistory() : slots_(kPackets) {}

void PacketHistory::record(const RtpPacketRef &packet) {
  if (packet.size < 12 || packet.size > kSlotBytes) return;
  const uint16_t seq = uint16_t(packet.data[2] << 8 | packet.data[3]);
  Slot &slot = slots_[seq % kPackets];
  // Reserved once, so a recorded packet costs one copy and no allocation.
  if (slot.bytes.capacity() < kSlotBytes) slot.bytes.reserve(kSlotBytes);
  slot.bytes.assign(packet.data, packet.data + packet.size);
  slot.used = true;
  slot.seq = seq;
  slot.ref = {slot.bytes.data(), packet.size, packet.header_len, packet.sampled_us, packet.abs_send_time};
}

const RtpPacketRef *PacketHistory::find(uint16_t seq) const {
  const Slot &slot = slots_[seq % kPackets];
  return slot.used && slot.seq == seq ? &slot.ref : nullptr;
}

}  // namespace wb
