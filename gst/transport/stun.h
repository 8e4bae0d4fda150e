// STUN (RFC 5389) as ICE uses it (RFC 8445): Binding requests and responses
// with short-term credentials. Only what a WebRTC peer needs: no long-term
// auth, no TURN attributes. Shared by the plugin's ICE-lite transport and the
// load generator's full ICE agent.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace wb {

namespace stun {

enum MessageType : uint16_t {
  kBindingRequest = 0x0001,
  kBindingSuccess = 0x0101,
  kBindingError = 0x0111,
};

enum Attribute : uint16_t {
  kUsername = 0x0006,
  kMessageIntegrity = 0x0008,
  kErrorCode = 0x0009,
  kXorMappedAddress = 0x0020,
  kPriority = 0x0024,
  kUseCandidate = 0x0025,
  kFingerprint = 0x8028,
  kIceControlled = 0x8029,
  kIceControlling = 0x802A,
};

using TransactionId = std::array<uint8_t, 12>;

// RFC 7983: the first byte of a STUN message is 0-3.
inline bool looks_like_stun(const uint8_t *data, size_t len) { return len >= 20 && data[0] < 4; }

// Builds one message; integrity and fingerprint are computed last, over
// everything before them, as RFC 5389 15.4 and 15.5 require.
class Writer {
 public:
  Writer(MessageType type, const TransactionId &id);
  void add(Attribute type, const void *value, size_t len);
  void add_string(Attribute type, const std::string &value) { add(type, value.data(), value.size()); }
  void add_u32(Attribute type, uint32_t value);
  void add_u64(Attribute type, uint64_t value);
  void add_xor_mapped_address(const sockaddr_in &address);
  // ERROR-CODE (RFC 5389 15.6): `code` 300-699, `reason` a short UTF-8 phrase.
  void add_error_code(int code, const std::string &reason);
  // Appends MESSAGE-INTEGRITY (HMAC-SHA1 keyed with `key`) then FINGERPRINT.
  const std::vector<uint8_t> &finish(const std::string &key);
  // Appends FINGERPRINT only: for an error answering a request whose
  // credentials we could not check (RFC 5389 10.1.2), no key can sign it.
  const std::vector<uint8_t> &finish_without_integrity();

 private:
  void set_length(size_t body_len);
  void add_fingerprint();
  std::vector<uint8_t> buf_;
};

// A received message: header fields and a view of its attributes.
class Message {
 public:
  // False when it is not a well-formed STUN message ending in a valid
  // FINGERPRINT.
  bool parse(const uint8_t *data, size_t len);
  uint16_t type() const { return type_; }
  const TransactionId &transaction() const { return transaction_; }
  // The attribute's value, or nullptr.
  const uint8_t *find(Attribute type, size_t *len) const;
  std::string username() const;
  int error_code() const;  // 0 when absent
  // XOR-MAPPED-ADDRESS, when present and IPv4.
  bool xor_mapped_address(sockaddr_in *address) const;
  // Checks MESSAGE-INTEGRITY against `key` (a short-term password).
  bool integrity_ok(const std::string &key) const;

 private:
  const uint8_t *data_ = nullptr;
  size_t len_ = 0;
  uint16_t type_ = 0;
  TransactionId transaction_{};
};

TransactionId random_transaction();

}  // namespace stun
}  // namespace wb
