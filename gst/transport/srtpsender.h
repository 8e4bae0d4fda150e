// One viewer's direct sender for one stream: protects the viewer's copy of
// the stream's RTP with its own SRTP context and queues it, for the viewer's
// address, in the thread's batch. Only the thread that delivers the
// viewer's packets (its sender shard, or the streaming thread for a viewer
// with a webrtcbin) uses it; each stream has its own context because each
// is one SSRC and may be sent by another thread.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "transport/srtpcontext.h"
#include "transport/tcpstream.h"

namespace wb {

// A payloaded packet of the shared stream, read-only.
struct RtpPacketRef {
  const uint8_t *data;
  size_t size;
  size_t header_len;
  // Monotonic time (µs) at which the packet's first sample was taken, by the
  // pipeline clock: what RTCP sender reports map RTP time to.
  int64_t sampled_us;
  // The abs-send-time each viewer's copy carries (abs_send_time_of() the
  // time the fan-out received it, once for every viewer). Not the time of
  // each send: a NACK's answer must be the very bytes sent before, since
  // under AES-GCM other bytes under the same sequence number would reuse a
  // nonce (a receiver's estimate skips such an old send time as out of order).
  uint32_t abs_send_time = 0;
};

// abs-send-time of a monotonic time (µs): seconds in 6.18 fixed point, 24
// bits, wrapping every 64 s. Any clock will do: receivers use differences.
uint32_t abs_send_time_of(int64_t monotonic_us);

// How one viewer's copy of a packet differs from the shared stream: its
// payload type and SSRC, and offsets that let its sequence numbers and
// timestamps run on without a gap when it is moved to another stream.
struct Rewrite {
  uint8_t payload_type = 0;
  uint32_t ssrc = 0;
  uint16_t seq_offset = 0;  // added to the shared stream's sequence number
  uint32_t ts_offset = 0;   // added to the shared stream's RTP timestamp
  // The viewer's id for abs-send-time (RFC 8285 one-byte header extension,
  // 1-14; 0: not negotiated). With it, each packet says when it left us
  // (RtpPacketRef::abs_send_time), and Chromium's estimate (REMB) follows the
  // queue on the viewer's link instead of guessing send times from RTP
  // timestamps. The shared stream's own extensions (ids the viewer never
  // agreed to) are then dropped.
  uint8_t abs_send_time_id = 0;
};

// The abs-send-time extension block: its 4-byte header and one element.
constexpr size_t kAbsSendTimeBlock = 8;

// Where a viewer's packets go.
struct UdpTarget {
  int fd = -1;
  sockaddr_storage remote{};
  socklen_t remote_len = 0;
  std::string description;
  // Whatever keeps `fd` open (a duplicated descriptor, a shared port): held
  // by every sender using it, so a send racing a removal hits a live socket.
  std::shared_ptr<const void> owner;
  // ICE-TCP: the viewer's connection, which frames and queues each packet
  // instead (fd and remote are then unused).
  std::shared_ptr<TcpStream> tcp;
};

// Where a viewer's media goes, shared by its senders and its transport:
// the transport may move it (an ICE-lite viewer nominating another pair
// after it connected) and each sender picks the move up at its next send.
class MediaRoute {
 public:
  explicit MediaRoute(UdpTarget target) : target_(std::move(target)) {}
  MediaRoute(const MediaRoute &) = delete;
  MediaRoute &operator=(const MediaRoute &) = delete;

  void move_to(UdpTarget target);
  UdpTarget current() const;
  // Replaces `*target` when any route moved since `*seen`: what a sender
  // asks before every send. Routes rarely move, so the answer is almost
  // always one read of a counter shared by all routes (in every core's
  // cache), not of this route (a cache miss per viewer).
  void refresh(uint64_t *seen, UdpTarget *target) const;

 private:
  mutable std::mutex lock_;
  UdpTarget target_;
};

// What one sender has sent, for the sender reports a transport writes.
// Written by the one thread that delivers the sender's packets, once per
// batch, without a lock (a sequence lock: the transport's thread, which
// reads once a second, retries when it caught a write half done).
class SentCounters {
 public:
  struct Snapshot {
    bool any = false;
    uint32_t packets = 0;
    uint32_t octets = 0;  // payload octets, as RFC 3550 counts them
    uint32_t rtp_time = 0;
    int64_t sampled_us = 0;
  };
  // The delivering thread only.
  void record(uint32_t packets, uint32_t octets, uint32_t rtp_time, int64_t sampled_us);
  Snapshot snapshot() const;

 private:
  std::atomic<uint32_t> version_{0};  // odd while record() writes
  std::atomic<uint32_t> packets_{0};
  std::atomic<uint32_t> octets_{0};
  std::atomic<uint32_t> rtp_time_{0};
  std::atomic<int64_t> sampled_us_{0};
};

// Packets protected for any number of viewers, sent with as few sendmmsg
// calls as possible: consecutive packets for one socket go in one call, so
// on the shared ICE-lite port a frame for a hundred viewers costs one
// syscall, not a hundred. One per streaming thread; the fan-out flushes it
// after each delivery (and it flushes itself when full).
class SendBatch {
 public:
  static SendBatch &for_this_thread();
  ~SendBatch();
  SendBatch(const SendBatch &) = delete;
  SendBatch &operator=(const SendBatch &) = delete;

  // Where the next packet is built (slot_size() bytes); commit() queues it.
  uint8_t *next_slot();
  static size_t slot_size();
  // `target` must live until the next flush() (senders outlive a delivery).
  void commit(size_t length, const UdpTarget &target);
  // A full socket buffer drops the rest of that socket's packets in this
  // batch, as a congested network would.
  void flush();
  // From now on, packets for `shared_fd` leave through `own_fd`: a sender
  // shard's own socket on the same address and port.
  void send_from(int shared_fd, int own_fd);

 private:
  SendBatch();
  struct Slots;
  int own_fd_for(int fd) const;

  std::unique_ptr<Slots> slots_;
  size_t count_ = 0;
  std::vector<std::pair<int, int>> own_fds_;  // shared fd -> this thread's
};

class SrtpSender {
 public:
  // `key_salt`: our sending master key (16 bytes) and salt (14).
  static std::unique_ptr<SrtpSender> create(std::shared_ptr<const MediaRoute> route, const uint8_t *key_salt,
                                            SrtpProfile profile, std::string *why);
  SrtpSender(const SrtpSender &) = delete;
  SrtpSender &operator=(const SrtpSender &) = delete;

  // Queues protected copies of `packets`, rewritten as `rewrite` says, in
  // `batch`. Returns the bytes queued.
  size_t send(const RtpPacketRef *packets, size_t count, const Rewrite &rewrite, SendBatch &batch);

  const std::shared_ptr<SentCounters> &counters() const { return counters_; }

  // Padding-only packets (RFC 3550 5.1: the P bit, 255 bytes of padding)
  // on another SSRC (the viewer's RTX stream), protected with a context of
  // its own: what probes a viewer's link without touching its media.
  static constexpr size_t kPaddingLength = 255;
  static constexpr size_t kPaddingPacketSize = 12 + kPaddingLength;  // as RTP, before SRTP
  // Queues `count` of them numbered from `*seq` on (which it advances),
  // with abs-send-time when `abs_send_time_id` is set (kAbsSendTimeBlock
  // more bytes each). Returns the bytes queued.
  size_t send_padding(uint8_t payload_type, uint32_t ssrc, uint16_t *seq, uint32_t rtp_time, size_t count,
                      uint8_t abs_send_time_id, SendBatch &batch);

 private:
  explicit SrtpSender(std::shared_ptr<const MediaRoute> route) : route_(std::move(route)) {}

  const std::shared_ptr<const MediaRoute> route_;
  // The streaming thread's copy of the route, changed in place: packets
  // already batched for it go where it points when the batch is flushed.
  UdpTarget target_;
  uint64_t route_seen_ = ~uint64_t(0);
  std::unique_ptr<SrtpContext> srtp_;
  std::shared_ptr<SentCounters> counters_ = std::make_shared<SentCounters>();
  // For the padding stream's context, made at its first packet (few
  // viewers ever probe).
  SrtpProfile profile_ = SrtpProfile::AeadAes128Gcm;
  std::array<uint8_t, SrtpContext::kMasterKeyLength + 14> key_salt_{};
  std::unique_ptr<SrtpContext> padding_srtp_;
};

}  // namespace wb
