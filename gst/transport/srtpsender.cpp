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
// A video frame rarely spans more packets; longer lists go in several calls.
constexpr size_t kBatch = 64;

struct Scratch {
  std::array<std::array<uint8_t, kSlotSize>, kBatch> slots;
  std::array<iovec, kBatch> iov;
  std::array<mmsghdr, kBatch> msgs;
};

// One per streaming thread: senders on the same thread never interleave.
Scratch &scratch() {
  thread_local std::unique_ptr<Scratch> s = std::make_unique<Scratch>();
  return *s;
}

}  // namespace

void SentCounters::record(uint32_t packets, uint32_t octets, uint32_t rtp_time, int64_t sampled_us) {
  std::lock_guard<std::mutex> lock(lock_);
  now_.any = true;
  now_.packets += packets;
  now_.octets += octets;
  now_.rtp_time = rtp_time;
  now_.sampled_us = sampled_us;
}

SentCounters::Snapshot SentCounters::snapshot() const {
  std::lock_guard<std::mutex> lock(lock_);
  return now_;
}

std::unique_ptr<SrtpSender> SrtpSender::create(UdpTarget target, const uint8_t *key_salt, SrtpProfile profile,
                                               std::string *why) {
  size_t tag = profile == SrtpProfile::Aes128CmSha1_80 ? 10 : 4;
  std::unique_ptr<SrtpSender> sender(new SrtpSender(std::move(target)));
  sender->srtp_ = SrtpContext::create(key_salt, key_salt + SrtpContext::kMasterKeyLength, tag);
  if (!sender->srtp_) {
    *why = "OpenSSL could not set up AES-128-CTR";
    return nullptr;
  }
  return sender;
}

size_t SrtpSender::send(const RtpPacketRef *packets, size_t count, uint8_t payload_type, uint32_t ssrc) {
  Scratch &s = scratch();
  const UdpTarget &route = target_;
  size_t bytes = 0;
  uint32_t payload_octets = 0, packets_sent = 0;
  const RtpPacketRef *last = count ? packets + count - 1 : nullptr;
  while (count > 0) {
    size_t n = 0;
    for (; n < kBatch && count > 0; ++packets, --count) {
      const RtpPacketRef &p = *packets;
      if (p.size + SrtpContext::kMaxTagLength > kSlotSize || p.header_len < 12) continue;
      uint8_t *slot = s.slots[n].data();
      memcpy(slot, p.data, p.size);
      slot[1] = uint8_t((slot[1] & 0x80) | (payload_type & 0x7f));
      slot[8] = uint8_t(ssrc >> 24);
      slot[9] = uint8_t(ssrc >> 16);
      slot[10] = uint8_t(ssrc >> 8);
      slot[11] = uint8_t(ssrc);
      size_t len = p.size;
      if (!srtp_->protect(slot, &len, p.header_len)) continue;  // only a malformed packet fails
      s.iov[n] = {slot, len};
      mmsghdr &m = s.msgs[n];
      memset(&m, 0, sizeof m);
      m.msg_hdr.msg_name = const_cast<sockaddr_storage *>(&route.remote);
      m.msg_hdr.msg_namelen = route.remote_len;
      m.msg_hdr.msg_iov = &s.iov[n];
      m.msg_hdr.msg_iovlen = 1;
      ++n;
    }
    size_t sent = 0;
    while (sent < n) {
      int r = sendmmsg(route.fd, &s.msgs[sent], unsigned(n - sent), MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      for (int i = 0; i < r; ++i) {
        size_t len = s.msgs[sent + size_t(i)].msg_len;
        bytes += len;
        payload_octets += uint32_t(len);
      }
      packets_sent += unsigned(r);
      sent += size_t(r);
    }
    if (sent < n)
      GST_LOG("direct send to %s: %zu of %zu packets dropped (%s)", route.description.c_str(), n - sent, n,
              g_strerror(errno));
  }
  if (last && packets_sent) {
    // RFC 3550 counts payload octets only; headers and tags are not media.
    const uint32_t overhead = uint32_t(last->header_len + srtp_->tag_length());
    const uint8_t *h = last->data;
    counters_->record(packets_sent, payload_octets - std::min(payload_octets, packets_sent * overhead),
                      uint32_t(h[4]) << 24 | uint32_t(h[5]) << 16 | uint32_t(h[6]) << 8 | h[7], last->sampled_us);
  }
  return bytes;
}

}  // namespace wb
