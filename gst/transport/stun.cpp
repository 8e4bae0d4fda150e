#include "stun.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

namespace wb {
namespace stun {

namespace {

constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr uint32_t kFingerprintXor = 0x5354554e;
constexpr size_t kHeaderLen = 20;
constexpr size_t kIntegrityLen = 4 + 20;
constexpr size_t kFingerprintLen = 4 + 4;

// CRC-32 (ISO 3309, the one zlib computes), table built once.
uint32_t crc32(const uint8_t *data, size_t len) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

void hmac_sha1(const std::string &key, const uint8_t *data, size_t len, uint8_t out[20]) {
  unsigned int out_len = 20;
  HMAC(EVP_sha1(), key.data(), int(key.size()), data, len, out, &out_len);
}

uint16_t read16(const uint8_t *p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t read32(const uint8_t *p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
void write16(uint8_t *p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void write32(uint8_t *p, uint32_t v) {
  write16(p, uint16_t(v >> 16));
  write16(p + 2, uint16_t(v));
}

}  // namespace

TransactionId random_transaction() {
  TransactionId id;
  RAND_bytes(id.data(), int(id.size()));
  return id;
}

Writer::Writer(MessageType type, const TransactionId &id) : buf_(kHeaderLen) {
  write16(&buf_[0], type);
  write32(&buf_[4], kMagicCookie);
  std::memcpy(&buf_[8], id.data(), id.size());
  buf_.reserve(128);
}

void Writer::add(Attribute type, const void *value, size_t len) {
  size_t at = buf_.size();
  buf_.resize(at + 4 + ((len + 3) & ~size_t(3)), 0);
  write16(&buf_[at], type);
  write16(&buf_[at + 2], uint16_t(len));
  if (len) std::memcpy(&buf_[at + 4], value, len);
}

void Writer::add_u32(Attribute type, uint32_t value) {
  uint8_t v[4];
  write32(v, value);
  add(type, v, 4);
}

void Writer::add_u64(Attribute type, uint64_t value) {
  uint8_t v[8];
  write32(v, uint32_t(value >> 32));
  write32(v + 4, uint32_t(value));
  add(type, v, 8);
}

void Writer::add_xor_mapped_address(const sockaddr_in &address) {
  uint8_t v[8] = {0, 0x01};  // reserved, family IPv4
  write16(v + 2, uint16_t(ntohs(address.sin_port) ^ (kMagicCookie >> 16)));
  write32(v + 4, ntohl(address.sin_addr.s_addr) ^ kMagicCookie);
  add(kXorMappedAddress, v, sizeof v);
}

void Writer::add_error_code(int code, const std::string &reason) {
  // The hundreds (class) and the rest (number) are separate fields; the
  // reason is not NUL-terminated.
  std::vector<uint8_t> v(4 + reason.size(), 0);
  v[2] = uint8_t((code / 100) & 0x7);
  v[3] = uint8_t(code % 100);
  std::memcpy(v.data() + 4, reason.data(), reason.size());
  add(kErrorCode, v.data(), v.size());
}

void Writer::set_length(size_t body_len) { write16(&buf_[2], uint16_t(body_len)); }

const std::vector<uint8_t> &Writer::finish(const std::string &key) {
  // The length field must already count the attribute being computed.
  size_t before_mi = buf_.size();
  set_length(before_mi - kHeaderLen + kIntegrityLen);
  uint8_t mac[20];
  hmac_sha1(key, buf_.data(), before_mi, mac);
  add(kMessageIntegrity, mac, sizeof mac);
  add_fingerprint();
  return buf_;
}

const std::vector<uint8_t> &Writer::finish_without_integrity() {
  add_fingerprint();
  return buf_;
}

void Writer::add_fingerprint() {
  size_t before_fp = buf_.size();
  set_length(before_fp - kHeaderLen + kFingerprintLen);
  add_u32(kFingerprint, crc32(buf_.data(), before_fp) ^ kFingerprintXor);
}

bool Message::parse(const uint8_t *data, size_t len) {
  if (!looks_like_stun(data, len) || read32(data + 4) != kMagicCookie) return false;
  size_t body = read16(data + 2);
  if (body % 4 || kHeaderLen + body != len) return false;
  data_ = data;
  len_ = len;
  type_ = read16(data);
  std::memcpy(transaction_.data(), data + 8, transaction_.size());
  // Walk the attributes once: they must tile the body exactly. ICE requires
  // FINGERPRINT (RFC 8445 7): without it, a datagram that merely starts like
  // STUN, or a real one with a bit flipped after MESSAGE-INTEGRITY, would
  // pass.
  bool fingerprinted = false;
  size_t at = kHeaderLen;
  while (at + 4 <= len) {
    size_t alen = read16(data + at + 2);
    size_t next = at + 4 + ((alen + 3) & ~size_t(3));
    if (next > len) return false;
    if (read16(data + at) == kFingerprint) {
      if (alen != 4 || next != len) return false;
      if ((crc32(data, at) ^ kFingerprintXor) != read32(data + at + 4)) return false;
      fingerprinted = true;
    }
    at = next;
  }
  return at == len && fingerprinted;
}

const uint8_t *Message::find(Attribute type, size_t *len) const {
  size_t at = kHeaderLen;
  while (at + 4 <= len_) {
    size_t alen = read16(data_ + at + 2);
    if (read16(data_ + at) == type) {
      *len = alen;
      return data_ + at + 4;
    }
    at += 4 + ((alen + 3) & ~size_t(3));
  }
  return nullptr;
}

std::string Message::username() const {
  size_t len = 0;
  const uint8_t *v = find(kUsername, &len);
  return v ? std::string(reinterpret_cast<const char *>(v), len) : std::string();
}

int Message::error_code() const {
  size_t len = 0;
  const uint8_t *v = find(kErrorCode, &len);
  if (!v || len < 4) return 0;
  return (v[2] & 0x7) * 100 + v[3];
}

bool Message::xor_mapped_address(sockaddr_in *address) const {
  size_t len = 0;
  const uint8_t *v = find(kXorMappedAddress, &len);
  if (!v || len != 8 || v[1] != 0x01) return false;  // IPv6 is 20 bytes, family 0x02
  *address = sockaddr_in{};
  address->sin_family = AF_INET;
  address->sin_port = htons(uint16_t(read16(v + 2) ^ (kMagicCookie >> 16)));
  address->sin_addr.s_addr = htonl(read32(v + 4) ^ kMagicCookie);
  return true;
}

bool Message::integrity_ok(const std::string &key) const {
  size_t len = 0;
  const uint8_t *mac = find(kMessageIntegrity, &len);
  if (!mac || len != 20) return false;
  size_t covered = size_t(mac - 4 - data_);
  // HMAC over the message up to MESSAGE-INTEGRITY, with a length that ends
  // right after it (a FINGERPRINT after it is not counted).
  std::vector<uint8_t> copy(data_, data_ + covered);
  write16(&copy[2], uint16_t(covered - kHeaderLen + kIntegrityLen));
  uint8_t expect[20];
  hmac_sha1(key, copy.data(), copy.size(), expect);
  return std::memcmp(expect, mac, 20) == 0;
}

}  // namespace stun
}  // namespace wb
