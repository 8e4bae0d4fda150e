// What one viewer's sender puts on the wire (gst/transport/srtpsender.cpp),
// decrypted by libsrtp2 as a browser would.
#include <arpa/inet.h>
#include <glib.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <srtp2/srtp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include "srtp_reference.h"
#include "transport/srtpsender.h"

namespace {

using srtp_test::make_packet;
using srtp_test::Reference;

uint32_t abs_send_time_of(int64_t monotonic_us) {
  return uint32_t((uint64_t(monotonic_us) << 18) / G_USEC_PER_SEC) & 0xffffff;
}

struct Loopback {
  int in = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int out = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  Loopback() {
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(in, reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
    socklen_t len = sizeof address;
    getsockname(in, reinterpret_cast<sockaddr *>(&address), &len);
  }
  ~Loopback() {
    close(in);
    close(out);
  }
  std::vector<uint8_t> receive() {
    pollfd p{in, POLLIN, 0};
    if (poll(&p, 1, 2000) != 1) return {};
    std::vector<uint8_t> data(2048);
    const ssize_t n = recv(in, data.data(), data.size(), 0);
    data.resize(n > 0 ? size_t(n) : 0);
    return data;
  }
};

}  // namespace

// A viewer that agreed to abs-send-time gets it in every packet, media and
// padding alike, in place of whatever extensions the shared stream carried
// (their ids were never agreed with this viewer); the CSRCs and payload stay.
// Media carries the time the fan-out received it, so that a retransmission
// is the same bytes (AES-GCM's nonce is the sequence number); padding, the
// time it is sent.
TEST(SrtpSender, WritesAbsSendTimeInPlaceOfTheSharedStreamsExtensions) {
  std::mt19937 rng(7);
  std::vector<uint8_t> key(30);
  for (auto &b : key) b = uint8_t(rng());
  Loopback net;
  wb::UdpTarget target;
  target.fd = net.out;
  memcpy(&target.remote, &net.address, sizeof net.address);
  target.remote_len = sizeof net.address;
  auto route = std::make_shared<wb::MediaRoute>(target);
  std::string why;
  auto sender = wb::SrtpSender::create(route, key.data(), wb::SrtpProfile::AeadAes128Gcm, &why);
  ASSERT_TRUE(sender) << why;
  Reference viewer(key, wb::SrtpProfile::AeadAes128Gcm, ssrc_any_inbound);

  // The shared stream's packets: one with a CSRC and no extension, one with
  // two words of a foreign extension.
  size_t plain_header = 0, foreign_header = 0;
  std::vector<uint8_t> plain = make_packet(rng, 100, 1, 300, 0, &plain_header);
  plain.insert(plain.begin() + 12, {0xca, 0xfe, 0xba, 0xbe});
  plain[0] |= 1;  // one CSRC
  plain_header += 4;
  const std::vector<uint8_t> foreign = make_packet(rng, 101, 1, 300, 2, &foreign_header);
  // Arrived at the fan-out 7 and 3 ms ago: what the media's stamps say.
  const int64_t now_us = g_get_monotonic_time();
  const wb::RtpPacketRef refs[] = {
      {plain.data(), plain.size(), plain_header, 0, wb::abs_send_time_of(now_us - 7000)},
      {foreign.data(), foreign.size(), foreign_header, 0, wb::abs_send_time_of(now_us - 3000)}};
  wb::Rewrite rewrite{97, 0x5555, 0, 0};
  rewrite.abs_send_time_id = 7;
  const uint32_t before = abs_send_time_of(g_get_monotonic_time());
  wb::SendBatch &batch = wb::SendBatch::for_this_thread();
  sender->send(refs, 2, rewrite, batch);
  uint16_t padding_seq = 9;
  sender->send_padding(98, 0x6666, &padding_seq, 1234, 1, 7, batch);
  batch.flush();
  const uint32_t after = abs_send_time_of(g_get_monotonic_time());

  auto check_extension = [&](const uint8_t *p, size_t csrcs, uint32_t first, uint32_t last) {
    EXPECT_TRUE(p[0] & 0x10) << "X bit";
    EXPECT_EQ(p[0] & 0x0f, int(csrcs));
    const uint8_t *ext = p + 12 + 4 * csrcs;
    EXPECT_EQ(ext[0], 0xbe);
    EXPECT_EQ(ext[1], 0xde);
    EXPECT_EQ(ext[2] << 8 | ext[3], 1) << "one word";
    EXPECT_EQ(ext[4], 7 << 4 | 2) << "id 7, 3 bytes";
    const uint32_t sent_at = uint32_t(ext[5]) << 16 | uint32_t(ext[6]) << 8 | ext[7];
    EXPECT_LE((sent_at - first) & 0xffffff, (last - first) & 0xffffff);
    return 12 + 4 * csrcs + wb::kAbsSendTimeBlock;
  };
  std::vector<uint8_t> foreign_on_the_wire;
  for (const std::vector<uint8_t> *original : {static_cast<const std::vector<uint8_t> *>(&plain), &foreign}) {
    std::vector<uint8_t> got = net.receive();
    ASSERT_FALSE(got.empty());
    if (original == &foreign) foreign_on_the_wire = got;
    int length = int(got.size());
    ASSERT_EQ(srtp_unprotect(viewer.session, got.data(), &length), srtp_err_status_ok);
    got.resize(size_t(length));
    const size_t csrcs = original == &plain ? 1 : 0;
    const uint32_t stamp = original == &plain ? refs[0].abs_send_time : refs[1].abs_send_time;
    const size_t header = check_extension(got.data(), csrcs, stamp, stamp);
    EXPECT_EQ(got[1], 97);
    EXPECT_EQ(got[11], 0x55);
    if (csrcs) EXPECT_EQ(0, memcmp(got.data() + 12, "\xca\xfe\xba\xbe", 4));
    const size_t original_header = original == &plain ? plain_header : foreign_header;
    ASSERT_EQ(got.size() - header, original->size() - original_header) << "payload length";
    EXPECT_EQ(0, memcmp(got.data() + header, original->data() + original_header, got.size() - header));
  }
  std::vector<uint8_t> padding = net.receive();
  ASSERT_FALSE(padding.empty());
  int length = int(padding.size());
  ASSERT_EQ(srtp_unprotect(viewer.session, padding.data(), &length), srtp_err_status_ok);
  ASSERT_EQ(size_t(length), wb::SrtpSender::kPaddingPacketSize + wb::kAbsSendTimeBlock);
  EXPECT_TRUE(padding[0] & 0x20) << "P bit";
  check_extension(padding.data(), 0, before, after);  // padding: the time it is sent
  EXPECT_EQ(padding[size_t(length) - 1], wb::SrtpSender::kPaddingLength);
  EXPECT_EQ(padding_seq, 10);

  // Sent again (a NACK's answer, later): the very same bytes, stamp included.
  sender->send(&refs[1], 1, rewrite, batch);
  batch.flush();
  EXPECT_EQ(net.receive(), foreign_on_the_wire);

  // Without it, the shared stream's packet goes as it was (its extension too).
  sender->send(&refs[1], 1, wb::Rewrite{97, 0x5555, 1, 0}, batch);
  batch.flush();
  std::vector<uint8_t> got = net.receive();
  ASSERT_FALSE(got.empty());
  length = int(got.size());
  ASSERT_EQ(srtp_unprotect(viewer.session, got.data(), &length), srtp_err_status_ok);
  ASSERT_EQ(size_t(length), foreign.size());
  EXPECT_EQ(0, memcmp(got.data() + 12, foreign.data() + 12, foreign.size() - 12));
}
