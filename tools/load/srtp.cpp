#include "srtp.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace load {

namespace {

bool library_ready() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = srtp_init() == srtp_err_status_ok; });
  return ok;
}

}  // namespace

SrtpSession::~SrtpSession() { destroy(); }

void SrtpSession::destroy() {
  if (session_) srtp_dealloc(session_);
  session_ = nullptr;
}

bool SrtpSession::create(wb::SrtpProfile profile, Direction direction, const uint8_t *key_salt,
                         std::string *error) {
  if (!library_ready()) {
    *error = "SRTP: srtp_init failed";
    return false;
  }
  srtp_policy_t policy{};
  switch (profile) {
    case wb::SrtpProfile::AeadAes128Gcm:
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
      break;
    case wb::SrtpProfile::Aes128CmSha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
      break;
    case wb::SrtpProfile::Aes128CmSha1_80:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
      break;
  }
  // Any SSRC: the server picks its SSRCs, and ours are our own business.
  policy.ssrc.type = direction == Direction::Inbound ? ssrc_any_inbound : ssrc_any_outbound;
  policy.key = const_cast<uint8_t *>(key_salt);
  srtp_err_status_t status = srtp_create(&session_, &policy);
  if (status != srtp_err_status_ok) {
    *error = "SRTP: srtp_create failed (" + std::to_string(int(status)) + ")";
    session_ = nullptr;
    return false;
  }
  return true;
}

bool SrtpSession::unprotect_rtp(uint8_t *data, size_t *len) {
  int n = int(*len);
  if (srtp_unprotect(session_, data, &n) != srtp_err_status_ok) return false;
  *len = size_t(n);
  return true;
}

bool SrtpSession::protect_rtcp(uint8_t *data, size_t *len) {
  int n = int(*len);
  if (srtp_protect_rtcp(session_, data, &n) != srtp_err_status_ok) return false;
  *len = size_t(n);
  return true;
}

SrtpPayloadPeek::~SrtpPayloadPeek() { EVP_CIPHER_CTX_free(aes_); }

void SrtpPayloadPeek::block(const uint8_t in[16], uint8_t out[16]) {
  int n = 0;
  EVP_EncryptUpdate(aes_, out, &n, in, 16);
}

bool SrtpPayloadPeek::create(wb::SrtpProfile profile, const uint8_t *key_salt) {
  const wb::SrtpProfileSizes sizes = wb::srtp_profile_sizes(profile);
  gcm_ = profile == wb::SrtpProfile::AeadAes128Gcm;
  tag_length_ = sizes.rtp_tag;
  aes_ = EVP_CIPHER_CTX_new();
  if (!aes_ || !EVP_EncryptInit_ex(aes_, EVP_aes_128_ecb(), nullptr, key_salt, nullptr)) return false;
  EVP_CIPHER_CTX_set_padding(aes_, 0);
  // The PRF input for a label: the master salt (GCM's 12 bytes zero-padded)
  // with the label XORed into its eighth byte (key_id = label || index DIV
  // kdr, which is 0), then a 16-bit block counter.
  auto derive = [&](uint8_t label, uint8_t out[16]) {
    uint8_t x[16] = {};
    std::memcpy(x, key_salt + 16, sizes.salt);
    x[7] ^= label;
    block(x, out);
  };
  uint8_t session_key[16], salt_block[16];
  derive(0x00, session_key);  // SRTP encryption key
  derive(0x02, salt_block);   // SRTP salting key: its first 14 (12) bytes
  std::memcpy(session_salt_, salt_block, sizes.salt);
  return EVP_EncryptInit_ex(aes_, nullptr, nullptr, session_key, nullptr) == 1;
}

void SrtpPayloadPeek::decrypt_head(uint32_t ssrc, uint64_t index, const uint8_t *payload, size_t len,
                                   uint8_t *out) {
  // CM's counter block: the session salt, XORed with the SSRC at bytes 4-7
  // and the 48-bit packet index at bytes 8-13; bytes 14-15 count blocks.
  // GCM's: the 12-byte IV (salt XOR SSRC at 2-5, index at 6-11), then a
  // 32-bit block counter from 2 (1 is the tag's).
  uint8_t counter[16] = {};
  const int at_ssrc = gcm_ ? 2 : 4;
  std::memcpy(counter, session_salt_, gcm_ ? 12 : 14);
  for (int i = 0; i < 4; ++i) counter[at_ssrc + i] ^= uint8_t(ssrc >> (24 - 8 * i));
  for (int i = 0; i < 6; ++i) counter[at_ssrc + 4 + i] ^= uint8_t(index >> (40 - 8 * i));
  len = std::min(len, kBytes);
  for (size_t at = 0; at < len; at += 16) {
    counter[15] = uint8_t(at / 16 + (gcm_ ? 2 : 0));
    uint8_t keystream[16];
    block(counter, keystream);
    for (size_t i = at; i < std::min(len, at + 16); ++i) out[i] = payload[i] ^ keystream[i - at];
  }
}

}  // namespace load
