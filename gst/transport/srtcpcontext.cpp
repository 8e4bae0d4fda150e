// SHA-1's low-level API is deprecated in OpenSSL 3 but is the only one that
// lets a pre-keyed HMAC state be copied by value for each packet.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "srtcpcontext.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

namespace wb {

namespace {

constexpr size_t kTagLength = 10;
constexpr size_t kIndexLength = 4;
constexpr size_t kClearHeader = 8;  // RTCP header and sender SSRC
constexpr uint32_t kEncryptedFlag = 0x80000000;
constexpr uint32_t kMaxIndex = 0x7FFFFFFF;

uint32_t read32(const uint8_t *p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

}  // namespace

std::unique_ptr<SrtcpContext> SrtcpContext::create(const uint8_t *key_salt) {
  std::unique_ptr<SrtcpContext> c(new SrtcpContext());
  if (!c->keys_.derive(key_salt, key_salt + SrtpContext::kMasterKeyLength, SrtpSessionKeys::Stream::Rtcp))
    return nullptr;
  return c;
}

SrtcpContext::~SrtcpContext() = default;

// IV = (salt << 16) ^ (SSRC << 64) ^ (index << 16), the 31-bit SRTCP index
// standing where SRTP has its 48-bit packet index.
bool SrtcpContext::crypt(uint8_t *packet, size_t length, uint32_t index) {
  uint8_t iv[16] = {};
  memcpy(iv, keys_.salt(), SrtpSessionKeys::kSaltLength);
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

bool SrtcpContext::protect(uint8_t *packet, size_t *length) {
  size_t len = *length;
  if (len < kClearHeader || index_ >= kMaxIndex) return false;
  uint32_t index = index_ + 1;
  if (!crypt(packet, len, index)) return false;
  index_ = index;
  uint32_t e_index = kEncryptedFlag | index;
  for (int i = 0; i < 4; ++i) packet[len + i] = uint8_t(e_index >> (24 - 8 * i));
  uint8_t digest[SHA_DIGEST_LENGTH];
  authenticate(packet, len + kIndexLength, digest);
  memcpy(packet + len + kIndexLength, digest, kTagLength);
  *length = len + kTrailer;
  return true;
}

bool SrtcpContext::unprotect(uint8_t *packet, size_t *length) {
  size_t len = *length;
  if (len < kClearHeader + kTrailer) return false;
  size_t plain = len - kTrailer;
  uint32_t e_index = read32(packet + plain);
  uint32_t index = e_index & kMaxIndex;
  uint32_t ssrc = read32(packet + 4);

  if (const ReplayWindow *w = find_window(ssrc); w && index <= w->highest) {
    uint32_t behind = w->highest - index;
    if (behind >= 64 || (w->seen >> behind & 1)) return false;
  }
  uint8_t digest[SHA_DIGEST_LENGTH];
  authenticate(packet, plain + kIndexLength, digest);
  if (CRYPTO_memcmp(digest, packet + plain + kIndexLength, kTagLength) != 0) return false;
  if ((e_index & kEncryptedFlag) && !crypt(packet, plain, index)) return false;
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
