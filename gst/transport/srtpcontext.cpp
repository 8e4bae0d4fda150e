// SHA-1's low-level API is deprecated in OpenSSL 3 but is the only one that
// lets a pre-keyed HMAC state be copied by value for each packet.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "srtpcontext.h"

#include <cstring>

namespace wb {

namespace {

constexpr size_t kAuthKeyLength = 20;

// RFC 3711 4.3.1 with a key derivation rate of 0: AES-CM keystream under the
// master key, from the master salt (a 12-byte one zero-padded, RFC 7714 11)
// with the label XORed in at byte 7.
bool derive_bytes(const uint8_t *master_key, const uint8_t *master_salt, size_t salt_length, uint8_t label,
                  uint8_t *out, size_t length) {
  uint8_t iv[16] = {};
  memcpy(iv, master_salt, salt_length);
  iv[7] ^= label;
  uint8_t zeros[32] = {};
  if (length > sizeof zeros) return false;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), nullptr, master_key, iv) == 1 &&
            EVP_EncryptUpdate(ctx, out, &n, zeros, int(length)) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

}  // namespace

SrtpProfileSizes srtp_profile_sizes(SrtpProfile profile) {
  switch (profile) {
    case SrtpProfile::Aes128CmSha1_80: return {14, 10, 10};
    case SrtpProfile::Aes128CmSha1_32: return {14, 4, 10};
    case SrtpProfile::AeadAes128Gcm: return {12, 16, 16};
  }
  return {14, 10, 10};
}

const char *srtp_profile_name(SrtpProfile profile) {
  switch (profile) {
    case SrtpProfile::Aes128CmSha1_80: return "AES_CM_128_HMAC_SHA1_80";
    case SrtpProfile::Aes128CmSha1_32: return "AES_CM_128_HMAC_SHA1_32";
    case SrtpProfile::AeadAes128Gcm: return "AEAD_AES_128_GCM";
  }
  return "unknown";
}

SrtpSessionKeys::~SrtpSessionKeys() { EVP_CIPHER_CTX_free(cipher_); }

bool SrtpSessionKeys::key_cipher(const uint8_t *session_key) {
  cipher_ = EVP_CIPHER_CTX_new();
  return cipher_ && EVP_EncryptInit_ex(cipher_, aead_ ? EVP_aes_128_gcm() : EVP_aes_128_ctr(), nullptr,
                                       session_key, nullptr) == 1;
}

bool SrtpSessionKeys::derive(SrtpProfile profile, const uint8_t *master_key_salt, Stream stream) {
  const uint8_t first_label = stream == Stream::Rtp ? 0x00 : 0x03;
  const size_t salt_length = srtp_profile_sizes(profile).salt;
  const uint8_t *master_salt = master_key_salt + kKeyLength;
  aead_ = profile == SrtpProfile::AeadAes128Gcm;
  uint8_t session_key[kKeyLength];
  uint8_t auth_key[kAuthKeyLength];
  bool ok = derive_bytes(master_key_salt, master_salt, salt_length, first_label, session_key, sizeof session_key) &&
            derive_bytes(master_key_salt, master_salt, salt_length, uint8_t(first_label + 2), salt_, salt_length);
  if (ok && !aead_) {
    ok = derive_bytes(master_key_salt, master_salt, salt_length, uint8_t(first_label + 1), auth_key,
                      sizeof auth_key);
    hmac_.set_key(auth_key, sizeof auth_key);
  }
  ok = ok && key_cipher(session_key);
  OPENSSL_cleanse(session_key, sizeof session_key);
  OPENSSL_cleanse(auth_key, sizeof auth_key);
  return ok;
}

bool SrtpSessionKeys::assign_gcm(const uint8_t *session_key, const uint8_t *session_salt) {
  aead_ = true;
  memcpy(salt_, session_salt, srtp_profile_sizes(SrtpProfile::AeadAes128Gcm).salt);
  return key_cipher(session_key);
}

std::unique_ptr<SrtpContext> SrtpContext::create(SrtpProfile profile, const uint8_t *master_key_salt) {
  std::unique_ptr<SrtpContext> c(new SrtpContext());
  c->tag_length_ = srtp_profile_sizes(profile).rtp_tag;
  if (!c->keys_.derive(profile, master_key_salt, SrtpSessionKeys::Stream::Rtp)) return nullptr;
  return c;
}

std::unique_ptr<SrtpContext> SrtpContext::create_gcm_with_session_keys(const uint8_t *session_key,
                                                                       const uint8_t *session_salt) {
  std::unique_ptr<SrtpContext> c(new SrtpContext());
  c->tag_length_ = srtp_profile_sizes(SrtpProfile::AeadAes128Gcm).rtp_tag;
  if (!c->keys_.assign_gcm(session_key, session_salt)) return nullptr;
  return c;
}

SrtpContext::~SrtpContext() = default;

PrekeyedHmacSha1::~PrekeyedHmacSha1() {
  OPENSSL_cleanse(&inner_, sizeof inner_);
  OPENSSL_cleanse(&outer_, sizeof outer_);
}

void PrekeyedHmacSha1::set_key(const uint8_t *key, size_t length) {
  uint8_t pad[SHA_CBLOCK];
  memset(pad, 0x36, sizeof pad);
  for (size_t i = 0; i < length; ++i) pad[i] ^= key[i];
  SHA1_Init(&inner_);
  SHA1_Update(&inner_, pad, sizeof pad);
  memset(pad, 0x5c, sizeof pad);
  for (size_t i = 0; i < length; ++i) pad[i] ^= key[i];
  SHA1_Init(&outer_);
  SHA1_Update(&outer_, pad, sizeof pad);
  OPENSSL_cleanse(pad, sizeof pad);
}

void PrekeyedHmacSha1::digest(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length,
                              uint8_t *digest) const {
  SHA_CTX sha = inner_;
  SHA1_Update(&sha, a, a_length);
  if (b_length) SHA1_Update(&sha, b, b_length);
  SHA1_Final(digest, &sha);
  sha = outer_;
  SHA1_Update(&sha, digest, SHA_DIGEST_LENGTH);
  SHA1_Final(digest, &sha);
}

// RFC 3711 3.3.1 and appendix A, for a sender: the counter goes up when the
// sequence number wraps; a packet from just before a wrap keeps the old one.
uint32_t SrtpContext::rollover_for(uint16_t seq) {
  if (!started_) {
    started_ = true;
    highest_seq_ = seq;
    return rollover_;
  }
  int16_t ahead = int16_t(uint16_t(seq - highest_seq_));
  if (ahead > 0) {
    if (seq < highest_seq_) ++rollover_;
    highest_seq_ = seq;
    return rollover_;
  }
  return seq > highest_seq_ && rollover_ > 0 ? rollover_ - 1 : rollover_;
}

bool SrtpContext::protect(uint8_t *packet, size_t *length, size_t header_length) {
  size_t len = *length;
  if (len < 12 || header_length < 12 || header_length > len) return false;
  uint16_t seq = uint16_t(packet[2] << 8 | packet[3]);
  uint32_t roc = rollover_for(seq);
  if (!(keys_.aead() ? protect_gcm(packet, len, header_length, roc) : protect_cm(packet, len, header_length, roc)))
    return false;
  *length = len + tag_length_;
  return true;
}

bool SrtpContext::protect_cm(uint8_t *packet, size_t len, size_t header_length, uint32_t roc) {
  // IV = (salt << 16) ^ (SSRC << 64) ^ (index << 16), index = ROC << 16 | SEQ.
  uint8_t iv[16] = {};
  memcpy(iv, keys_.salt(), srtp_profile_sizes(SrtpProfile::Aes128CmSha1_80).salt);
  for (int i = 0; i < 4; ++i) iv[4 + i] ^= packet[8 + i];
  iv[8] ^= uint8_t(roc >> 24);
  iv[9] ^= uint8_t(roc >> 16);
  iv[10] ^= uint8_t(roc >> 8);
  iv[11] ^= uint8_t(roc);
  iv[12] ^= packet[2];
  iv[13] ^= packet[3];
  int n = 0;
  if (EVP_EncryptInit_ex(keys_.cipher(), nullptr, nullptr, nullptr, iv) != 1 ||
      EVP_EncryptUpdate(keys_.cipher(), packet + header_length, &n, packet + header_length, int(len - header_length)) != 1)
    return false;

  // Tag = HMAC-SHA1(auth key, packet || ROC), truncated.
  uint8_t roc_bytes[4] = {uint8_t(roc >> 24), uint8_t(roc >> 16), uint8_t(roc >> 8), uint8_t(roc)};
  uint8_t digest[SHA_DIGEST_LENGTH];
  keys_.hmac().digest(packet, len, roc_bytes, sizeof roc_bytes, digest);
  memcpy(packet + len, digest, tag_length_);
  return true;
}

// RFC 7714 8: IV = salt ^ (0x0000 || SSRC || ROC || SEQ), the header (with
// CSRCs and extensions) is the associated data, the 16-byte tag follows the
// encrypted payload.
bool SrtpContext::protect_gcm(uint8_t *packet, size_t len, size_t header_length, uint32_t roc) {
  uint8_t iv[12];
  memcpy(iv, keys_.salt(), sizeof iv);
  for (int i = 0; i < 4; ++i) iv[2 + i] ^= packet[8 + i];
  iv[6] ^= uint8_t(roc >> 24);
  iv[7] ^= uint8_t(roc >> 16);
  iv[8] ^= uint8_t(roc >> 8);
  iv[9] ^= uint8_t(roc);
  iv[10] ^= packet[2];
  iv[11] ^= packet[3];
  EVP_CIPHER_CTX *gcm = keys_.cipher();
  int n = 0;
  return EVP_EncryptInit_ex(gcm, nullptr, nullptr, nullptr, iv) == 1 &&
         EVP_EncryptUpdate(gcm, nullptr, &n, packet, int(header_length)) == 1 &&
         EVP_EncryptUpdate(gcm, packet + header_length, &n, packet + header_length, int(len - header_length)) == 1 &&
         EVP_EncryptFinal_ex(gcm, packet + len, &n) == 1 &&
         EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_GET_TAG, int(tag_length_), packet + len) == 1;
}

}  // namespace wb
