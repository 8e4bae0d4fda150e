#include "srtpsender.h"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

// Room for any RTP packet our payloaders make plus the SRTP trailer.
constexpr size_t kSlotSize = 1500 + SRTP_MAX_TRAILER_LEN;
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

bool init_library(std::string *why) {
  static std::once_flag once;
  static srtp_err_status_t status = srtp_err_status_ok;
  // bad_param: its debug module is already registered, i.e. libsrtp was
  // initialised before, by GStreamer's srtp plugin.
  std::call_once(once, [] {
    status = srtp_init();
    if (status == srtp_err_status_bad_param) status = srtp_err_status_ok;
  });
  if (status != srtp_err_status_ok) *why = "srtp_init failed (" + std::to_string(int(status)) + ")";
  return status == srtp_err_status_ok;
}

void set_policy(SrtpProfile profile, srtp_crypto_policy_t *rtp, srtp_crypto_policy_t *rtcp) {
  switch (profile) {
    case SrtpProfile::Aes128CmSha1_80:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(rtcp);
      break;
    case SrtpProfile::Aes128CmSha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(rtcp);  // RFC 5764: RTCP keeps the 80-bit tag
      break;
    case SrtpProfile::AeadAes128Gcm:
      srtp_crypto_policy_set_aes_gcm_128_16_auth(rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(rtcp);
      break;
    case SrtpProfile::AeadAes256Gcm:
      srtp_crypto_policy_set_aes_gcm_256_16_auth(rtp);
      srtp_crypto_policy_set_aes_gcm_256_16_auth(rtcp);
      break;
  }
}

}  // namespace

std::unique_ptr<SrtpSender> SrtpSender::create(std::shared_ptr<DirectRoute> route, std::string *why) {
  if (!init_library(why)) return nullptr;
  std::unique_ptr<SrtpSender> sender(new SrtpSender(std::move(route)));
  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  set_policy(sender->route_->profile(), &policy.rtp, &policy.rtcp);
  policy.ssrc.type = ssrc_any_outbound;
  // libsrtp only reads the key while creating the session.
  policy.key = const_cast<unsigned char *>(sender->route_->master_key().data());
  policy.window_size = 128;
  srtp_err_status_t status = srtp_create(&sender->session_, &policy);
  if (status != srtp_err_status_ok) {
    sender->session_ = nullptr;
    *why = "srtp_create failed (" + std::to_string(int(status)) + ")";
    return nullptr;
  }
  return sender;
}

SrtpSender::~SrtpSender() {
  if (session_) srtp_dealloc(session_);
}

size_t SrtpSender::send(const RtpPacketRef *packets, size_t count, uint8_t payload_type, uint32_t ssrc) {
  Scratch &s = scratch();
  const DirectRoute &route = *route_;
  size_t bytes = 0;
  while (count > 0) {
    size_t n = 0;
    for (; n < kBatch && count > 0; ++packets, --count) {
      const RtpPacketRef &p = *packets;
      if (p.size + SRTP_MAX_TRAILER_LEN > kSlotSize || p.header_len < 12) continue;
      uint8_t *slot = s.slots[n].data();
      memcpy(slot, p.data, p.size);
      slot[1] = uint8_t((slot[1] & 0x80) | (payload_type & 0x7f));
      slot[8] = uint8_t(ssrc >> 24);
      slot[9] = uint8_t(ssrc >> 16);
      slot[10] = uint8_t(ssrc >> 8);
      slot[11] = uint8_t(ssrc);
      int len = int(p.size);
      if (srtp_protect(session_, slot, &len) != srtp_err_status_ok) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      s.iov[n] = {slot, size_t(len)};
      mmsghdr &m = s.msgs[n];
      memset(&m, 0, sizeof m);
      m.msg_hdr.msg_name = const_cast<sockaddr_storage *>(&route.remote());
      m.msg_hdr.msg_namelen = route.remote_len();
      m.msg_hdr.msg_iov = &s.iov[n];
      m.msg_hdr.msg_iovlen = 1;
      ++n;
    }
    size_t sent = 0;
    while (sent < n) {
      int r = sendmmsg(route.fd(), &s.msgs[sent], unsigned(n - sent), MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      for (int i = 0; i < r; ++i) bytes += s.msgs[sent + size_t(i)].msg_len;
      sent += size_t(r);
    }
    if (sent < n) {
      dropped_.fetch_add(n - sent, std::memory_order_relaxed);
      GST_LOG("direct send to %s: %zu of %zu packets dropped (%s)", route.describe().c_str(), n - sent, n,
              g_strerror(errno));
    }
  }
  return bytes;
}

}  // namespace wb
