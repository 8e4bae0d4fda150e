// STUN (gst/transport/stun.*): every datagram on the ICE-lite port that
// starts like STUN is parsed before we know whose it is, and its
// MESSAGE-INTEGRITY is checked against a viewer's password.
//
// First byte even: the rest is a datagram, parsed and read the way the
// port reads a check. Odd: a message built from fuzzed attributes with
// Writer must parse and pass its integrity check, and must not once any
// one bit of it is flipped.
#include "fuzz.h"
#include "transport/stun.h"

namespace {

using namespace wb::stun;

// RFC 5769's password, so that its test vectors reach the HMAC compare.
const std::string kPassword = "VOkJxbRl1RmTxUk/WvJxBt";

void read_datagram(const uint8_t *data, size_t size) {
  Message m;
  if (!looks_like_stun(data, size) || !m.parse(data, size)) return;
  size_t len = 0;
  const uint8_t *v = m.find(kPriority, &len);
  if (v) FUZZ_CHECK(v + len <= data + size);
  std::string user = m.username();
  FUZZ_CHECK(user.size() <= size);
  m.error_code();
  sockaddr_in address;
  m.xor_mapped_address(&address);
  m.find(kUseCandidate, &len);
  m.integrity_ok(kPassword);
  m.integrity_ok("");
}

void round_trip(fuzz::Input &in) {
  std::string key(in.u8(), '\0');
  for (char &c : key) c = char(in.u8());
  TransactionId id;
  for (auto &b : id) b = in.u8();
  // RFC 7983: a first byte of 0-3 is what we take for STUN.
  Writer w(MessageType(in.u16() & 0x03FF), id);
  const bool with_integrity = in.u8() & 1;
  unsigned attributes = in.u8() % 16;
  std::string first_username;
  bool has_username = false;
  for (unsigned i = 0; i < attributes; ++i) {
    uint16_t type = in.u16();
    // A second MESSAGE-INTEGRITY or FINGERPRINT is not what Writer makes.
    if (type == kMessageIntegrity || type == kFingerprint) type = 0x8022;  // SOFTWARE
    std::vector<uint8_t> value = in.bytes(in.u8());
    w.add(Attribute(type), value.data(), value.size());
    if (type == kUsername && !has_username) {
      has_username = true;
      first_username.assign(value.begin(), value.end());
    }
  }
  std::vector<uint8_t> bytes = with_integrity ? w.finish(key) : w.finish_without_integrity();

  Message m;
  FUZZ_CHECK(m.parse(bytes.data(), bytes.size()));
  FUZZ_CHECK(m.transaction() == id);
  FUZZ_CHECK(m.integrity_ok(key) == with_integrity);
  FUZZ_CHECK(m.username() == first_username);

  size_t flip = in.u16() % bytes.size();
  bytes[flip] ^= uint8_t(1 << (in.u8() % 8));
  Message flipped;
  FUZZ_CHECK(!flipped.parse(bytes.data(), bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    read_datagram(data + 1, size - 1);
  } else {
    fuzz::Input in(data + 1, size - 1);
    round_trip(in);
  }
  return 0;
}
