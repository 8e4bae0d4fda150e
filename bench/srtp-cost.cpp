// srtp-cost: CPU per protected packet, by SRTP profile, on one core. What
// a viewer's media costs in crypto alone, to decide whether the AEAD
// profiles (RFC 7714) would pay before building them (issue 13, item 5).
//
//   srtp-cost [--seconds S]     (default 2 s per case; pin it with taskset)
//
// Cases, each on 1,200-byte (video) and 120-byte (Opus) packets with a 12-byte
// header, the packet rewritten (sequence number) before each protect as the
// fan-out does:
//   ours-cm-sha1-80   SrtpContext::protect (gst/transport): AES-128-CTR +
//                     pre-keyed HMAC-SHA1, what every viewer costs today
//   evp-gcm-128       AES-128-GCM through OpenSSL's EVP, as an RFC 7714
//                     protect would call it: 12-byte IV from salt, SSRC,
//                     ROC and sequence number; the header as AAD; 16-byte tag
//   libsrtp-cm-sha1-80, libsrtp-gcm-128
//                     the system's libsrtp2 (Debian: built on NSS), for
//                     reference; GCM only if it was built with it
// Prints ns per packet and MB/s for each; the ratio to ours-cm-sha1-80.
#include <openssl/evp.h>
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

struct EvpGcm {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  uint8_t salt[12];
  EvpGcm() {
    uint8_t key[16];
    for (int i = 0; i < 16; ++i) key[i] = uint8_t(i * 7);
    for (int i = 0; i < 12; ++i) salt[i] = uint8_t(i * 13);
    EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, key, nullptr);
  }
  ~EvpGcm() { EVP_CIPHER_CTX_free(ctx); }
  bool protect(uint8_t *p, size_t *length) {
    uint8_t iv[12];
    memcpy(iv, salt, 12);
    for (int i = 0; i < 4; ++i) iv[2 + i] ^= p[8 + i];  // SSRC
    iv[10] ^= p[2];                                      // ROC 0, sequence number
    iv[11] ^= p[3];
    int n = 0;
    const size_t header = 12, len = *length;
    if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv) != 1 ||
        EVP_EncryptUpdate(ctx, nullptr, &n, p, int(header)) != 1 ||
        EVP_EncryptUpdate(ctx, p + header, &n, p + header, int(len - header)) != 1 ||
        EVP_EncryptFinal_ex(ctx, p + len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p + len) != 1)
      return false;
    *length = len + 16;
    return true;
  }
};

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
  uint8_t master_key[16], master_salt[14];
  for (int i = 0; i < 16; ++i) master_key[i] = uint8_t(i);
  for (int i = 0; i < 14; ++i) master_salt[i] = uint8_t(0x40 + i);
  auto ours = wb::SrtpContext::create(master_key, master_salt, 10);
  EvpGcm gcm;
  srtp_t cm_session = libsrtp_session(false), gcm_session = libsrtp_session(true);

  struct Case {
    const char *name;
    std::function<bool(uint8_t *, size_t *)> protect;
    uint16_t seq = 1000;
  };
  std::vector<Case> cases = {
      {"ours-cm-sha1-80", [&](uint8_t *p, size_t *len) { return ours->protect(p, len, 12); }},
      {"evp-gcm-128", [&](uint8_t *p, size_t *len) { return gcm.protect(p, len); }},
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
