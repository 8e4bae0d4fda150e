// What the SRTP tests decrypt and send with: libsrtp2 as the reference a
// browser uses, and plain RTP packets to protect.
#pragma once

#include <gtest/gtest.h>
#include <srtp2/srtp.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "transport/srtpcontext.h"

namespace srtp_test {

struct Reference {
  srtp_t session = nullptr;
  // For both CM profiles RTCP is HMAC-SHA1-80, as DTLS-SRTP peers set it up
  // (libsrtp's srtp_crypto_policy_set_from_profile_for_rtcp); GCM is GCM for both.
  Reference(const std::vector<uint8_t> &key_and_salt, wb::SrtpProfile profile,
            srtp_ssrc_type_t direction = ssrc_any_outbound, bool encrypt_rtcp = true) {
    static bool initialised = srtp_init() == srtp_err_status_ok;
    EXPECT_TRUE(initialised);
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (profile == wb::SrtpProfile::AeadAes128Gcm) {
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    } else {
      if (profile == wb::SrtpProfile::Aes128CmSha1_80) srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
      else srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    }
    if (!encrypt_rtcp) policy.rtcp.sec_serv = sec_serv_auth;
    policy.ssrc.type = direction;
    policy.key = const_cast<unsigned char *>(key_and_salt.data());
    policy.window_size = 128;
    EXPECT_EQ(srtp_create(&session, &policy), srtp_err_status_ok);
  }
  ~Reference() { srtp_dealloc(session); }
};

// An RTP packet: version 2, `extension_words` 32-bit words of header
// extension, random payload.
inline std::vector<uint8_t> make_packet(std::mt19937 &rng, uint16_t seq, uint32_t ssrc, size_t payload,
                                 size_t extension_words, size_t *header_length) {
  std::vector<uint8_t> p(12 + (extension_words ? 4 + 4 * extension_words : 0) + payload);
  p[0] = uint8_t(0x80 | (extension_words ? 0x10 : 0));
  p[1] = 96;
  p[2] = uint8_t(seq >> 8);
  p[3] = uint8_t(seq);
  uint32_t ts = rng();
  for (int i = 0; i < 4; ++i) p[4 + i] = uint8_t(ts >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) p[8 + i] = uint8_t(ssrc >> (24 - 8 * i));
  size_t at = 12;
  if (extension_words) {
    p[12] = 0xBE;
    p[13] = 0xDE;
    p[14] = 0;
    p[15] = uint8_t(extension_words);
    at = 16 + 4 * extension_words;
  }
  for (size_t i = 16; i < p.size(); ++i) p[i] = uint8_t(rng());
  *header_length = at;
  return p;
}

}  // namespace srtp_test
