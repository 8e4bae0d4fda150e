// srtp-cost: CPU per protected packet, by SRTP profile, on one core: what
// a viewer's media costs in crypto alone, ours against libsrtp2.
//
//   srtp-cost [--seconds S]     (default 2 s per case; pin it with taskset)
//
// Cases, each on 1,200-byte (video) and 120-byte (Opus) packets with a 12-byte
// header, the packet rewritten (sequence number) before each protect as the
// fan-out does:
//   ours-cm-sha1-80   SrtpContext::protect (gst/transport): AES-128-CTR +
//                     pre-keyed HMAC-SHA1, what a viewer without GCM costs
//   ours-gcm-128      SrtpContext::protect with AEAD_AES_128_GCM (RFC 7714),
//                     what a browser viewer costs
//   libsrtp-cm-sha1-80, libsrtp-gcm-128
//                     the system's libsrtp2 (Debian: built on NSS), for
//                     reference; GCM only if it was built with it
// Prints ns per packet and MB/s for each; the ratio to ours-cm-sha1-80.
#include <srtp2/srtp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "transport/srtpcontext.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_per_case = 2.0;

// Runs `protect` on fresh copies of a packet of `size` bytes until the time
// is up; returns ns per packet.
// `seq` runs on for each context across sizes: libsrtp2 refuses to protect
// a packet index it has protected before.
double measure(size_t size, const std::function<bool(uint8_t *, size_t *)> &protect, uint16_t &seq) {
  std::vector<uint8_t> plain(size, 0xab), buffer(size + 64);
  plain[0] = 0x80;
  plain[1] = 96;
  plain[8] = 0x12;  // SSRC
  uint64_t packets = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds_per_case);
  auto now = start;
  while (now < end) {
    for (int i = 0; i < 1000; ++i) {
      memcpy(buffer.data(), plain.data(), size);
      buffer[2] = uint8_t(seq >> 8);
      buffer[3] = uint8_t(seq);
      ++seq;
      size_t length = size;
      if (!protect(buffer.data(), &length)) {
        fprintf(stderr, "protect failed\n");
        exit(1);
      }
    }
    packets += 1000;
    now = Clock::now();
  }
  return std::chrono::duration<double, std::nano>(now - start).count() / double(packets);
}

srtp_t libsrtp_session(bool gcm) {
  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  if (gcm) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
  } else {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
  }
  static uint8_t key[64];
  for (size_t i = 0; i < sizeof key; ++i) key[i] = uint8_t(i * 3);
  policy.key = key;
  policy.ssrc.type = ssrc_any_outbound;
  policy.window_size = 128;
  srtp_t session = nullptr;
  if (srtp_create(&session, &policy) != srtp_err_status_ok) return nullptr;
  return session;
}

}  // namespace

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--seconds") seconds_per_case = atof(argv[i + 1]);
  srtp_init();
  uint8_t master_key_salt[30];
  for (int i = 0; i < 30; ++i) master_key_salt[i] = uint8_t(i < 16 ? i : 0x30 + i);
  auto ours_cm = wb::SrtpContext::create(wb::SrtpProfile::Aes128CmSha1_80, master_key_salt);
  auto ours_gcm = wb::SrtpContext::create(wb::SrtpProfile::AeadAes128Gcm, master_key_salt);
  srtp_t cm_session = libsrtp_session(false), gcm_session = libsrtp_session(true);

  struct Case {
    const char *name;
    std::function<bool(uint8_t *, size_t *)> protect;
    uint16_t seq = 1000;
  };
  std::vector<Case> cases = {
      {"ours-cm-sha1-80", [&](uint8_t *p, size_t *len) { return ours_cm->protect(p, len, 12); }},
      {"ours-gcm-128", [&](uint8_t *p, size_t *len) { return ours_gcm->protect(p, len, 12); }},
  };
  auto libsrtp = [](srtp_t session) {
    return [session](uint8_t *p, size_t *len) {
      int n = int(*len);
      const srtp_err_status_t status = srtp_protect(session, p, &n);
      if (status != srtp_err_status_ok) {
        fprintf(stderr, "srtp_protect: error %d\n", int(status));
        return false;
      }
      *len = size_t(n);
      return true;
    };
  };
  if (cm_session) cases.push_back({"libsrtp-cm-sha1-80", libsrtp(cm_session)});
  if (gcm_session) cases.push_back({"libsrtp-gcm-128", libsrtp(gcm_session)});
  else printf("# libsrtp2 here has no AES-GCM\n");

  printf("%-20s %8s %12s %10s %8s\n", "case", "bytes", "ns/packet", "MB/s", "ratio");
  for (size_t size : {size_t(1200), size_t(120)}) {
    double base = 0;
    for (auto &c : cases) {
      const double ns = measure(size, c.protect, c.seq);
      if (base == 0) base = ns;
      printf("%-20s %8zu %12.1f %10.1f %8.2f\n", c.name, size, ns, double(size) * 1e3 / ns, ns / base);
    }
  }
  return 0;
}
