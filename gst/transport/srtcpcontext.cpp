// SHA-1's low-level API is deprecated in OpenSSL 3 but is the only one that
// lets a pre-keyed HMAC state be copied by value for each packet.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "srtcpcontext.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

namespace wb {

namespace {

constexpr size_t kIndexLength = 4;
constexpr size_t kClearHeader = 8;  // RTCP header and sender SSRC
constexpr uint32_t kEncryptedFlag = 0x80000000;
constexpr uint32_t kMaxIndex = 0x7FFFFFFF;

uint32_t read32(const uint8_t *p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

}  // namespace

std::unique_ptr<SrtcpContext> SrtcpContext::create(SrtpProfile profile, const uint8_t *key_salt) {
  std::unique_ptr<SrtcpContext> c(new SrtcpContext());
  c->tag_length_ = srtp_profile_sizes(profile).rtcp_tag;
  if (!c->keys_.derive(profile, key_salt, SrtpSessionKeys::Stream::Rtcp)) return nullptr;
  return c;
}

std::unique_ptr<SrtcpContext> SrtcpContext::create_gcm_with_session_keys(const uint8_t *session_key,
                                                                         const uint8_t *session_salt) {
  std::unique_ptr<SrtcpContext> c(new SrtcpContext());
  c->tag_length_ = srtp_profile_sizes(SrtpProfile::AeadAes128Gcm).rtcp_tag;
  if (!c->keys_.assign_gcm(session_key, session_salt)) return nullptr;
  return c;
}

SrtcpContext::~SrtcpContext() = default;

// IV = (salt << 16) ^ (SSRC << 64) ^ (index << 16), the 31-bit SRTCP index
// standing where SRTP has its 48-bit packet index.
bool SrtcpContext::crypt(uint8_t *packet, size_t length, uint32_t index) {
  uint8_t iv[16] = {};
  memcpy(iv, keys_.salt(), srtp_profile_sizes(SrtpProfile::Aes128CmSha1_80).salt);
  for (int i = 0; i < 4; ++i) iv[4 + i] ^= packet[4 + i];
  iv[10] ^= uint8_t(index >> 24);
  iv[11] ^= uint8_t(index >> 16);
  iv[12] ^= uint8_t(index >> 8);
  iv[13] ^= uint8_t(index);
  int n = 0;
  return EVP_EncryptInit_ex(keys_.cipher(), nullptr, nullptr, nullptr, iv) == 1 &&
         EVP_EncryptUpdate(keys_.cipher(), packet + kClearHeader, &n, packet + kClearHeader,
                           int(length - kClearHeader)) == 1;
}

// HMAC-SHA1 over the packet as sent, E|index included.
void SrtcpContext::authenticate(const uint8_t *packet, size_t length, uint8_t *digest) const {
  keys_.hmac().digest(packet, length, nullptr, 0, digest);
}

namespace {

// RFC 7714 9.1: IV = salt ^ (0x0000 || SSRC || 0x0000 || 0 || index).
void gcm_iv(const uint8_t *salt, const uint8_t *packet, uint32_t index, uint8_t iv[12]) {
  memcpy(iv, salt, 12);
  for (int i = 0; i < 4; ++i) iv[2 + i] ^= packet[4 + i];
  for (int i = 0; i < 4; ++i) iv[8 + i] ^= uint8_t(index >> (24 - 8 * i));
}

void write32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (24 - 8 * i));
}

}  // namespace

// Associated data: the first 8 bytes and E|index (the whole compound and
// E|index if E is clear); the tag goes to packet + length.
bool SrtcpContext::seal_gcm(uint8_t *packet, size_t length, uint32_t e_index) {
  uint8_t iv[12], trailer[4];
  gcm_iv(keys_.salt(), packet, e_index & kMaxIndex, iv);
  write32(trailer, e_index);
  EVP_CIPHER_CTX *gcm = keys_.cipher();
  int n = 0;
  return EVP_EncryptInit_ex(gcm, nullptr, nullptr, nullptr, iv) == 1 &&
         EVP_EncryptUpdate(gcm, nullptr, &n, packet, int(kClearHeader)) == 1 &&
         EVP_EncryptUpdate(gcm, nullptr, &n, trailer, sizeof trailer) == 1 &&
         EVP_EncryptUpdate(gcm, packet + kClearHeader, &n, packet + kClearHeader, int(length - kClearHeader)) == 1 &&
         EVP_EncryptFinal_ex(gcm, packet + length, &n) == 1 &&
         EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_GET_TAG, int(tag_length_), packet + length) == 1;
}

bool SrtcpContext::open_gcm(uint8_t *packet, size_t length, uint32_t e_index) {
  const bool encrypted = e_index & kEncryptedFlag;
  uint8_t iv[12], trailer[4];
  gcm_iv(keys_.salt(), packet, e_index & kMaxIndex, iv);
  write32(trailer, e_index);
  EVP_CIPHER_CTX *gcm = keys_.cipher();
  int n = 0;
  return EVP_DecryptInit_ex(gcm, nullptr, nullptr, nullptr, iv) == 1 &&
         EVP_DecryptUpdate(gcm, nullptr, &n, packet, int(encrypted ? kClearHeader : length)) == 1 &&
         EVP_DecryptUpdate(gcm, nullptr, &n, trailer, sizeof trailer) == 1 &&
         (!encrypted || EVP_DecryptUpdate(gcm, packet + kClearHeader, &n, packet + kClearHeader,
                                          int(length - kClearHeader)) == 1) &&
         EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, int(tag_length_), packet + length) == 1 &&
         EVP_DecryptFinal_ex(gcm, packet + length, &n) > 0;
}

bool SrtcpContext::protect(uint8_t *packet, size_t *length) {
  size_t len = *length;
  if (len < kClearHeader || index_ >= kMaxIndex) return false;
  uint32_t index = index_ + 1;
  uint32_t e_index = kEncryptedFlag | index;
  if (keys_.aead()) {
    if (!seal_gcm(packet, len, e_index)) return false;
    write32(packet + len + tag_length_, e_index);
  } else {
    if (!crypt(packet, len, index)) return false;
    write32(packet + len, e_index);
    uint8_t digest[SHA_DIGEST_LENGTH];
    authenticate(packet, len + kIndexLength, digest);
    memcpy(packet + len + kIndexLength, digest, tag_length_);
  }
  index_ = index;
  *length = len + trailer_length();
  return true;
}

bool SrtcpContext::unprotect(uint8_t *packet, size_t *length) {
  size_t len = *length;
  if (len < kClearHeader + trailer_length()) return false;
  size_t plain = len - trailer_length();
  uint32_t e_index = read32(packet + (keys_.aead() ? len - kIndexLength : plain));
  uint32_t index = e_index & kMaxIndex;
  uint32_t ssrc = read32(packet + 4);

  if (const ReplayWindow *w = find_window(ssrc); w && index <= w->highest) {
    uint32_t behind = w->highest - index;
    if (behind >= 64 || (w->seen >> behind & 1)) return false;
  }
  if (keys_.aead()) {
    if (!open_gcm(packet, plain, e_index)) return false;
  } else {
    uint8_t digest[SHA_DIGEST_LENGTH];
    authenticate(packet, plain + kIndexLength, digest);
    if (CRYPTO_memcmp(digest, packet + plain + kIndexLength, tag_length_) != 0) return false;
    if ((e_index & kEncryptedFlag) && !crypt(packet, plain, index)) return false;
  }
  accept(ssrc, index);
  *length = plain;
  return true;
}

const SrtcpContext::ReplayWindow *SrtcpContext::find_window(uint32_t ssrc) const {
  for (const auto &w : windows_)
    if (w.ssrc == ssrc) return &w;
  return nullptr;
}

void SrtcpContext::accept(uint32_t ssrc, uint32_t index) {
  ++accepted_;
  auto w = std::find_if(windows_.begin(), windows_.end(), [ssrc](const ReplayWindow &x) { return x.ssrc == ssrc; });
  if (w == windows_.end()) {
    // Only an authenticated packet gets here, so only the peer can make us
    // track more SSRCs, and it cannot make us track many.
    ReplayWindow fresh{ssrc, index, 1, accepted_};
    if (windows_.size() < kMaxSenders) {
      windows_.push_back(fresh);
    } else {
      *std::min_element(windows_.begin(), windows_.end(), [](const ReplayWindow &a, const ReplayWindow &b) {
        return a.last_used < b.last_used;
      }) = fresh;
    }
    return;
  }
  w->last_used = accepted_;
  if (index > w->highest) {
    uint32_t ahead = index - w->highest;
    w->seen = ahead >= 64 ? 1 : w->seen << ahead | 1;
    w->highest = index;
  } else {
    w->seen |= uint64_t(1) << (w->highest - index);
  }
}

}  // namespace wb
