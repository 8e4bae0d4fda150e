// STUN (gst/transport/stun.cpp) against the RFC 5769 test vectors, which
// browsers and libnice agree with, and against itself.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "transport/stun.h"

namespace {

using namespace wb::stun;

// RFC 5769 2.1: a Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED,
// USERNAME (padded with spaces, which receivers must ignore),
// MESSAGE-INTEGRITY and FINGERPRINT.
const std::vector<uint8_t> kSampleRequest = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
    0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

// RFC 5769 2.2: a Binding success response with an IPv4 XOR-MAPPED-ADDRESS.
const std::vector<uint8_t> kSampleIpv4Response = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa,
    0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f,
    0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00,
    0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53,
    0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

const std::string kSamplePassword = "VOkJxbRl1RmTxUk/WvJxBt";

const TransactionId kSampleTransaction = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

uint32_t u32(const uint8_t *p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

TEST(Stun, Rfc5769SampleRequest) {
  ASSERT_TRUE(looks_like_stun(kSampleRequest.data(), kSampleRequest.size()));
  Message m;
  // parse() checks FINGERPRINT: true means the CRC matched.
  ASSERT_TRUE(m.parse(kSampleRequest.data(), kSampleRequest.size()));
  EXPECT_EQ(m.type(), kBindingRequest);
  EXPECT_EQ(m.transaction(), kSampleTransaction);
  EXPECT_EQ(m.username(), "evtj:h6vY");
  size_t len = 0;
  const uint8_t *software = m.find(Attribute(0x8022), &len);
  ASSERT_NE(software, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(software), len), "STUN test client");
  const uint8_t *priority = m.find(kPriority, &len);
  ASSERT_NE(priority, nullptr);
  ASSERT_EQ(len, 4u);
  EXPECT_EQ(u32(priority), 0x6e0001ffu);
  EXPECT_NE(m.find(kIceControlled, &len), nullptr);
  EXPECT_EQ(m.find(kIceControlling, &len), nullptr);
  EXPECT_EQ(m.error_code(), 0);
  EXPECT_TRUE(m.integrity_ok(kSamplePassword));
  EXPECT_FALSE(m.integrity_ok("VOkJxbRl1RmTxUk/WvJxBT"));
  EXPECT_FALSE(m.integrity_ok(""));
}

TEST(Stun, Rfc5769SampleIpv4Response) {
  Message m;
  ASSERT_TRUE(m.parse(kSampleIpv4Response.data(), kSampleIpv4Response.size()));
  EXPECT_EQ(m.type(), kBindingSuccess);
  EXPECT_EQ(m.transaction(), kSampleTransaction);
  EXPECT_TRUE(m.integrity_ok(kSamplePassword));
  sockaddr_in address{};
  ASSERT_TRUE(m.xor_mapped_address(&address));
  EXPECT_EQ(address.sin_family, AF_INET);
  char text[INET_ADDRSTRLEN];
  EXPECT_STREQ(inet_ntop(AF_INET, &address.sin_addr, text, sizeof text), "192.0.2.1");
  EXPECT_EQ(ntohs(address.sin_port), 32853);
}

// Anything that changes a byte must be caught: FINGERPRINT covers every
// byte before it (so parse() fails), MESSAGE-INTEGRITY every byte before
// itself. Either is enough for ICE, which checks both.
TEST(Stun, CorruptedByteIsRejected) {
  for (size_t i = 0; i < kSampleRequest.size(); ++i) {
    std::vector<uint8_t> bytes = kSampleRequest;
    bytes[i] ^= 0x01;
    Message m;
    bool accepted = m.parse(bytes.data(), bytes.size()) && m.integrity_ok(kSamplePassword);
    EXPECT_FALSE(accepted) << "byte " << i;
  }
}

TEST(Stun, TruncatedOrNotStunIsRejected) {
  Message m;
  EXPECT_FALSE(m.parse(kSampleRequest.data(), kSampleRequest.size() - 4));
  EXPECT_FALSE(m.parse(kSampleRequest.data(), 19));
  std::vector<uint8_t> bad_cookie = kSampleRequest;
  bad_cookie[4] = 0x22;
  EXPECT_FALSE(m.parse(bad_cookie.data(), bad_cookie.size()));
  // Without FINGERPRINT (ICE always sends it), even with the length fixed.
  std::vector<uint8_t> unfingerprinted(kSampleRequest.begin(), kSampleRequest.end() - 8);
  unfingerprinted[3] = uint8_t(unfingerprinted.size() - 20);
  EXPECT_FALSE(m.parse(unfingerprinted.data(), unfingerprinted.size()));
  const uint8_t dtls[20] = {22, 0xfe, 0xfd};
  EXPECT_FALSE(looks_like_stun(dtls, sizeof dtls));
}

TEST(Stun, WriterRoundTrip) {
  TransactionId id = random_transaction();
  Writer w(kBindingRequest, id);
  w.add_string(kUsername, "remote:local");  // 12 bytes: no padding
  w.add_u32(kPriority, 0x6e7fffffu);
  w.add(kUseCandidate, nullptr, 0);
  w.add_u64(kIceControlling, 0x0123456789abcdefull);
  const std::vector<uint8_t> bytes = w.finish("the remote password");

  Message m;
  ASSERT_TRUE(m.parse(bytes.data(), bytes.size()));
  EXPECT_EQ(m.type(), kBindingRequest);
  EXPECT_EQ(m.transaction(), id);
  EXPECT_EQ(m.username(), "remote:local");
  size_t len = 0;
  const uint8_t *priority = m.find(kPriority, &len);
  ASSERT_NE(priority, nullptr);
  EXPECT_EQ(u32(priority), 0x6e7fffffu);
  ASSERT_NE(m.find(kUseCandidate, &len), nullptr);
  EXPECT_EQ(len, 0u);
  const uint8_t *tie = m.find(kIceControlling, &len);
  ASSERT_NE(tie, nullptr);
  ASSERT_EQ(len, 8u);
  EXPECT_EQ(uint64_t(u32(tie)) << 32 | u32(tie + 4), 0x0123456789abcdefull);
  EXPECT_TRUE(m.integrity_ok("the remote password"));
  EXPECT_FALSE(m.integrity_ok("the local password"));
}

TEST(Stun, OddLengthUsernameIsPadded) {
  Writer w(kBindingRequest, random_transaction());
  w.add_string(kUsername, "abc:defgh");  // 9 bytes, 3 of padding
  const std::vector<uint8_t> bytes = w.finish("pwd");
  EXPECT_EQ(bytes.size() % 4, 0u);
  Message m;
  ASSERT_TRUE(m.parse(bytes.data(), bytes.size()));
  EXPECT_EQ(m.username(), "abc:defgh");
  EXPECT_TRUE(m.integrity_ok("pwd"));
}

TEST(Stun, SuccessResponseCarriesTheMappedAddress) {
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_port = htons(50123);
  inet_pton(AF_INET, "10.1.2.3", &from.sin_addr);
  TransactionId id = random_transaction();
  Writer w(kBindingSuccess, id);
  w.add_xor_mapped_address(from);
  const std::vector<uint8_t> bytes = w.finish("pwd");
  Message m;
  ASSERT_TRUE(m.parse(bytes.data(), bytes.size()));
  EXPECT_EQ(m.type(), kBindingSuccess);
  EXPECT_EQ(m.transaction(), id);
  sockaddr_in mapped{};
  ASSERT_TRUE(m.xor_mapped_address(&mapped));
  EXPECT_EQ(mapped.sin_port, from.sin_port);
  EXPECT_EQ(mapped.sin_addr.s_addr, from.sin_addr.s_addr);
  EXPECT_TRUE(m.integrity_ok("pwd"));
}

TEST(Stun, ErrorResponseWithoutIntegrity) {
  TransactionId id = random_transaction();
  Writer w(kBindingError, id);
  w.add_error_code(401, "Unauthorized");
  const std::vector<uint8_t> bytes = w.finish_without_integrity();
  Message m;
  ASSERT_TRUE(m.parse(bytes.data(), bytes.size()));
  EXPECT_EQ(m.type(), kBindingError);
  EXPECT_EQ(m.transaction(), id);
  EXPECT_EQ(m.error_code(), 401);
  size_t len = 0;
  const uint8_t *error = m.find(kErrorCode, &len);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(error) + 4, len - 4), "Unauthorized");
  EXPECT_EQ(m.find(kMessageIntegrity, &len), nullptr);
  EXPECT_FALSE(m.integrity_ok(""));
  // FINGERPRINT is last and covers the rest.
  ASSERT_GE(bytes.size(), 8u);
  EXPECT_EQ(bytes[bytes.size() - 8], 0x80);
  EXPECT_EQ(bytes[bytes.size() - 7], 0x28);
}

TEST(Stun, ErrorCodeClassAndNumber) {
  for (int code : {300, 400, 420, 487, 500, 699}) {
    Writer w(kBindingError, random_transaction());
    w.add_error_code(code, "x");
    const std::vector<uint8_t> bytes = w.finish("pwd");
    Message m;
    ASSERT_TRUE(m.parse(bytes.data(), bytes.size()));
    EXPECT_EQ(m.error_code(), code);
    EXPECT_TRUE(m.integrity_ok("pwd"));
  }
}

}  // namespace
