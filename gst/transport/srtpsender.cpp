#include "srtpsender.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

// Room for any RTP packet our payloaders make plus the SRTP tag.
constexpr size_t kSlotSize = 1500 + SrtpContext::kMaxTagLength;
// A few video frames for a hundred viewers: few enough syscalls that their
// fixed cost disappears, little enough memory per streaming thread (400 KB).
constexpr size_t kBatch = 256;

uint32_t read_u32(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

void write_u32(uint8_t *p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// Sets the X bit of the RTP header in `slot` (fixed part and CSRCs already
// there) and writes after them an extension block holding abs-send-time
// alone. Returns the header's new length.
size_t write_abs_send_time(uint8_t *slot, uint8_t id, uint32_t sent_at) {
  const size_t fixed = 12 + 4 * size_t(slot[0] & 0x0f);
  slot[0] |= 0x10;
  uint8_t *ext = slot + fixed;
  ext[0] = 0xbe;  // RFC 8285's one-byte header profile
  ext[1] = 0xde;
  ext[2] = 0;
  ext[3] = 1;  // one 32-bit word follows
  ext[4] = uint8_t(id << 4 | 2);  // 3 bytes of data
  ext[5] = uint8_t(sent_at >> 16);
  ext[6] = uint8_t(sent_at >> 8);
  ext[7] = uint8_t(sent_at);
  return fixed + kAbsSendTimeBlock;
}

}  // namespace

uint32_t abs_send_time_of(int64_t monotonic_us) {
  return uint32_t((uint64_t(monotonic_us) << 18) / G_USEC_PER_SEC) & 0xffffff;
}

struct SendBatch::Slots {
  std::array<std::array<uint8_t, kSlotSize>, kBatch> data;
  std::array<iovec, kBatch> iov;
  std::array<mmsghdr, kBatch> msgs;
  std::array<int, kBatch> fds;
  std::array<const std::string *, kBatch> descriptions;
};

SendBatch::SendBatch() : slots_(std::make_unique<Slots>()) {}
SendBatch::~SendBatch() = default;

SendBatch &SendBatch::for_this_thread() {
  thread_local SendBatch batch;
  return batch;
}

uint8_t *SendBatch::next_slot() {
  if (count_ == kBatch) flush();
  return slots_->data[count_].data();
}

size_t SendBatch::slot_size() { return kSlotSize; }

void SendBatch::commit(size_t length, const UdpTarget &target) {
  Slots &s = *slots_;
  if (target.tcp) {
    // Written (or queued) now: the slot is free again for the next packet.
    target.tcp->send(s.data[count_].data(), length);
    return;
  }
  s.iov[count_] = {s.data[count_].data(), length};
  mmsghdr &m = s.msgs[count_];
  memset(&m, 0, sizeof m);
  m.msg_hdr.msg_name = const_cast<sockaddr_storage *>(&target.remote);
  m.msg_hdr.msg_namelen = target.remote_len;
  m.msg_hdr.msg_iov = &s.iov[count_];
  m.msg_hdr.msg_iovlen = 1;
  s.fds[count_] = target.fd;
  s.descriptions[count_] = &target.description;
  ++count_;
}

void SendBatch::flush() {
  Slots &s = *slots_;
  size_t at = 0;
  while (at < count_) {
    // Consecutive packets for one socket (on the ICE-lite port: every
    // viewer's) go in one call.
    size_t end = at + 1;
    while (end < count_ && s.fds[end] == s.fds[at]) ++end;
    const int fd = own_fd_for(s.fds[at]);
    while (at < end) {
      int r = sendmmsg(fd, &s.msgs[at], unsigned(end - at), MSG_DONTWAIT);
      if (r > 0) {
        at += size_t(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
        // Only this packet's destination is at fault: skip it.
        GST_LOG("direct send to %s: %s", s.descriptions[at]->c_str(), g_strerror(errno));
        ++at;
        continue;
      }
      // A full send buffer drops the rest for this socket, as a congested
      // network would.
      GST_LOG("direct send: %zu packets dropped (%s)", end - at, g_strerror(errno));
      at = end;
    }
  }
  count_ = 0;
}

void SendBatch::send_from(int shared_fd, int own_fd) {
  for (auto &pair : own_fds_)
    if (pair.first == shared_fd) {
      pair.second = own_fd;
      return;
    }
  own_fds_.emplace_back(shared_fd, own_fd);
}

int SendBatch::own_fd_for(int fd) const {
  for (const auto &pair : own_fds_)
    if (pair.first == fd) return pair.second;
  return fd;
}

void SentCounters::record(uint32_t packets, uint32_t octets, uint32_t rtp_time, int64_t sampled_us) {
  const uint32_t v = version_.load(std::memory_order_relaxed);
  version_.store(v + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  packets_.store(packets_.load(std::memory_order_relaxed) + packets, std::memory_order_relaxed);
  octets_.store(octets_.load(std::memory_order_relaxed) + octets, std::memory_order_relaxed);
  rtp_time_.store(rtp_time, std::memory_order_relaxed);
  sampled_us_.store(sampled_us, std::memory_order_relaxed);
  version_.store(v + 2, std::memory_order_release);
}

SentCounters::Snapshot SentCounters::snapshot() const {
  for (;;) {
    const uint32_t before = version_.load(std::memory_order_acquire);
    Snapshot s;
    s.packets = packets_.load(std::memory_order_relaxed);
    s.octets = octets_.load(std::memory_order_relaxed);
    s.rtp_time = rtp_time_.load(std::memory_order_relaxed);
    s.sampled_us = sampled_us_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (before % 2 == 0 && version_.load(std::memory_order_relaxed) == before) {
      s.any = before != 0;
      return s;
    }
  }
}

namespace {
// Moves of every route so far.
std::atomic<uint64_t> route_moves{0};
}  // namespace

void MediaRoute::move_to(UdpTarget target) {
  std::lock_guard<std::mutex> lock(lock_);
  target_ = std::move(target);
  route_moves.fetch_add(1, std::memory_order_release);
}

UdpTarget MediaRoute::current() const {
  std::lock_guard<std::mutex> lock(lock_);
  return target_;
}

void MediaRoute::refresh(uint64_t *seen, UdpTarget *target) const {
  const uint64_t moves = route_moves.load(std::memory_order_acquire);
  if (moves == *seen) return;
  std::lock_guard<std::mutex> lock(lock_);
  *target = target_;
  *seen = moves;
}

std::unique_ptr<SrtpSender> SrtpSender::create(std::shared_ptr<const MediaRoute> route, const uint8_t *key_salt,
                                               SrtpProfile profile, std::string *why) {
  std::unique_ptr<SrtpSender> sender(new SrtpSender(std::move(route)));
  sender->srtp_ = SrtpContext::create(profile, key_salt);
  if (!sender->srtp_) {
    *why = std::string("OpenSSL could not set up ") + srtp_profile_name(profile);
    return nullptr;
  }
  sender->profile_ = profile;
  memcpy(sender->key_salt_.data(), key_salt, SrtpContext::kMasterKeyLength + srtp_profile_sizes(profile).salt);
  return sender;
}

size_t SrtpSender::send_padding(uint8_t payload_type, uint32_t ssrc, uint16_t *seq, uint32_t rtp_time, size_t count,
                                uint8_t abs_send_time_id, SendBatch &batch) {
  route_->refresh(&route_seen_, &target_);
  if (target_.fd < 0 || !count) return 0;
  if (!padding_srtp_) padding_srtp_ = SrtpContext::create(profile_, key_salt_.data());
  if (!padding_srtp_) return 0;
  // Fresh packets each time: the time they are sent.
  const uint32_t sent_at = abs_send_time_id ? abs_send_time_of(g_get_monotonic_time()) : 0;
  size_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    uint8_t *slot = batch.next_slot();
    slot[0] = 0xa0;  // version 2, padding
    slot[1] = uint8_t(payload_type & 0x7f);
    slot[2] = uint8_t(*seq >> 8);
    slot[3] = uint8_t(*seq);
    write_u32(slot + 4, rtp_time);
    write_u32(slot + 8, ssrc);
    const size_t header = abs_send_time_id ? write_abs_send_time(slot, abs_send_time_id, sent_at) : 12;
    memset(slot + header, 0, kPaddingLength - 1);
    slot[header + kPaddingLength - 1] = uint8_t(kPaddingLength);
    size_t len = header + kPaddingLength;
    if (!padding_srtp_->protect(slot, &len, header)) break;
    batch.commit(len, target_);
    bytes += len;
    ++*seq;
  }
  return bytes;
}

size_t SrtpSender::send(const RtpPacketRef *packets, size_t count, const Rewrite &rewrite, SendBatch &batch) {
  route_->refresh(&route_seen_, &target_);
  if (target_.fd < 0) return 0;  // the route was withdrawn (consent lost)
  size_t bytes = 0;
  uint32_t queued = 0, payload_octets = 0;
  const RtpPacketRef *last = nullptr;
  uint32_t last_rtp_time = 0;
  const size_t extra = rewrite.abs_send_time_id ? kAbsSendTimeBlock : 0;
  for (size_t i = 0; i < count; ++i) {
    const RtpPacketRef &p = packets[i];
    if (p.size + extra + SrtpContext::kMaxTagLength > SendBatch::slot_size() || p.header_len < 12) continue;
    uint8_t *slot = batch.next_slot();
    size_t len = p.size, header = p.header_len;
    if (rewrite.abs_send_time_id) {
      const size_t fixed = 12 + 4 * size_t(p.data[0] & 0x0f);  // with the CSRCs
      if (fixed > p.header_len) continue;
      memcpy(slot, p.data, fixed);
      header = write_abs_send_time(slot, rewrite.abs_send_time_id, p.abs_send_time);
      memcpy(slot + header, p.data + p.header_len, p.size - p.header_len);
      len = header + (p.size - p.header_len);
    } else {
      memcpy(slot, p.data, p.size);
    }
    slot[1] = uint8_t((slot[1] & 0x80) | (rewrite.payload_type & 0x7f));
    const uint16_t seq = uint16_t((slot[2] << 8 | slot[3]) + rewrite.seq_offset);
    const uint32_t rtp_time = read_u32(slot + 4) + rewrite.ts_offset;
    slot[2] = uint8_t(seq >> 8);
    slot[3] = uint8_t(seq);
    write_u32(slot + 4, rtp_time);
    write_u32(slot + 8, rewrite.ssrc);
    if (!srtp_->protect(slot, &len, header)) continue;  // only a malformed packet fails
    batch.commit(len, target_);
    bytes += len;
    payload_octets += uint32_t(p.size - p.header_len);
    ++queued;
    last = &p;
    last_rtp_time = rtp_time;
  }
  if (last) counters_->record(queued, payload_octets, last_rtp_time, last->sampled_us);
  return bytes;
}

}  // namespace wb
