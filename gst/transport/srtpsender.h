// One branch's direct sender: protects the branch's RTP with its own SRTP
// context and sends a batch with one sendmmsg to the viewer's address. Runs
// on the fan-out's streaming thread; each branch has its own context because
// audio and video are delivered by different threads (and each is one SSRC).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "transport/srtpcontext.h"

namespace wb {

// A payloaded packet of the shared stream, read-only.
struct RtpPacketRef {
  const uint8_t *data;
  size_t size;
  size_t header_len;
  // Monotonic time (µs) at which the packet's first sample was taken, by the
  // pipeline clock: what RTCP sender reports map RTP time to.
  int64_t sampled_us;
};

// Where a viewer's packets go.
struct UdpTarget {
  int fd = -1;
  sockaddr_storage remote{};
  socklen_t remote_len = 0;
  std::string description;
  // Whatever keeps `fd` open (a duplicated descriptor, a shared port): held
  // by every sender using it, so a send racing a removal hits a live socket.
  std::shared_ptr<const void> owner;
};

// What one sender has sent, for the sender reports a transport writes.
class SentCounters {
 public:
  struct Snapshot {
    bool any = false;
    uint32_t packets = 0;
    uint32_t octets = 0;  // payload octets, as RFC 3550 counts them
    uint32_t rtp_time = 0;
    int64_t sampled_us = 0;
  };
  void record(uint32_t packets, uint32_t octets, uint32_t rtp_time, int64_t sampled_us);
  Snapshot snapshot() const;

 private:
  mutable std::mutex lock_;
  Snapshot now_;
};

class SrtpSender {
 public:
  // `key_salt`: our sending master key (16 bytes) and salt (14).
  static std::unique_ptr<SrtpSender> create(UdpTarget target, const uint8_t *key_salt, SrtpProfile profile,
                                            std::string *why);
  SrtpSender(const SrtpSender &) = delete;
  SrtpSender &operator=(const SrtpSender &) = delete;

  // Sends copies of `packets` rewritten to `payload_type` and `ssrc`. A full
  // socket buffer drops the rest of this batch for this viewer only, like a
  // congested network would. Returns the bytes handed to the kernel.
  size_t send(const RtpPacketRef *packets, size_t count, uint8_t payload_type, uint32_t ssrc);

  const std::shared_ptr<SentCounters> &counters() const { return counters_; }

 private:
  explicit SrtpSender(UdpTarget target) : target_(std::move(target)) {}

  const UdpTarget target_;
  std::unique_ptr<SrtpContext> srtp_;
  std::shared_ptr<SentCounters> counters_ = std::make_shared<SentCounters>();
};

}  // namespace wb
