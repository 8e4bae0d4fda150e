// One viewer's transport on the ICE-lite port, driven over real UDP
// sockets on loopback: a viewer (a STUN client and a DTLS client of our
// own) connects, then nominates another pair, and the media must follow.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <vector>

#include "common/debug.h"
#include "transport/iceliteport.h"
#include "transport/litetransport.h"
#include "transport/srtpsender.h"

namespace {

using namespace wb;

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A UDP socket on 127.0.0.1, any port.
struct Udp {
  int fd = -1;
  sockaddr_in address{};
  Udp() {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address);
    socklen_t len = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr *>(&address), &len);
  }
  ~Udp() {
    if (fd >= 0) close(fd);
  }
  void send_to(const sockaddr_in &to, const uint8_t *data, size_t len) const {
    sendto(fd, data, len, 0, reinterpret_cast<const sockaddr *>(&to), sizeof to);
  }
  // One datagram within `ms`, or empty.
  std::vector<uint8_t> receive(int ms, sockaddr_in *from = nullptr) const {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return {};
    std::vector<uint8_t> buf(2048);
    sockaddr_in src{};
    socklen_t len = sizeof src;
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr *>(&src), &len);
    if (n < 0) return {};
    buf.resize(size_t(n));
    if (from) *from = src;
    return buf;
  }
};

bool same(const sockaddr_storage &a, const sockaddr_in &b) {
  const auto &in = reinterpret_cast<const sockaddr_in &>(a);
  return in.sin_family == AF_INET && in.sin_addr.s_addr == b.sin_addr.s_addr && in.sin_port == b.sin_port;
}

const char kServerUfrag[] = "srvU";
const char kServerPwd[] = "server-password-0123456789";

// A connectivity check from the viewer (the controlling agent).
stun::Message check(bool nominate, std::vector<uint8_t> *storage) {
  stun::TransactionId id{};
  for (auto &b : id) b = uint8_t(rand());
  stun::Writer w(stun::kBindingRequest, id);
  w.add_string(stun::kUsername, std::string(kServerUfrag) + ":viewerU");
  w.add_u32(stun::kPriority, 1000);
  w.add_u64(stun::kIceControlling, 42);
  if (nominate) w.add(stun::kUseCandidate, nullptr, 0);
  *storage = w.finish(kServerPwd);
  stun::Message message;
  EXPECT_TRUE(message.parse(storage->data(), storage->size()));
  return message;
}

}  // namespace

TEST(LiteTransport, MediaFollowsANominationAfterConnecting) {
  debug_init();
  std::string error;
  auto server_id = DtlsIdentity::create(&error);
  auto viewer_id = DtlsIdentity::create(&error);
  ASSERT_TRUE(server_id && viewer_id) << error;

  Udp port_udp, first, second;
  auto socket = std::make_shared<PortSocket>(dup(port_udp.fd), port_udp.address);
  LiteTransport transport(kServerUfrag, kServerPwd, server_id, DtlsRole::Server, viewer_id->fingerprint(), {});

  std::vector<uint8_t> storage;
  ASSERT_TRUE(transport.on_binding_request(check(true, &storage), first.address, socket, now_ns()));
  // The check is answered from the port's socket.
  ASSERT_FALSE(first.receive(1000).empty());

  DtlsEndpoint viewer(viewer_id, DtlsRole::Client, server_id->fingerprint(),
                      [&](const uint8_t *d, size_t n) { first.send_to(port_udp.address, d, n); });
  viewer.start(now_ns());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((transport.state() != LiteTransport::State::Connected || !viewer.connected()) &&
         std::chrono::steady_clock::now() < deadline) {
    auto to_port = port_udp.receive(5);
    if (!to_port.empty()) transport.on_datagram(to_port.data(), to_port.size(), now_ns());
    auto to_viewer = first.receive(5);
    if (!to_viewer.empty()) viewer.on_datagram(to_viewer.data(), to_viewer.size(), now_ns());
    transport.on_tick(now_ns());
    if (now_ns() >= viewer.next_deadline()) viewer.on_timer(now_ns());
  }
  ASSERT_EQ(transport.state(), LiteTransport::State::Connected);
  ASSERT_TRUE(viewer.connected());

  auto route = transport.media_route();
  ASSERT_TRUE(route);
  EXPECT_TRUE(same(route->current().remote, first.address));
  auto sender = SrtpSender::create(route, transport.keys().local, transport.keys().profile, &error);
  ASSERT_TRUE(sender) << error;
  std::vector<uint8_t> rtp(200, 0);
  rtp[0] = 0x80;
  rtp[1] = 96;
  auto send_one = [&](uint16_t seq) {
    rtp[2] = uint8_t(seq >> 8);
    rtp[3] = uint8_t(seq);
    RtpPacketRef ref{rtp.data(), rtp.size(), 12, 0};
    SendBatch &batch = SendBatch::for_this_thread();
    sender->send(&ref, 1, 96, 1234, batch);
    batch.flush();
  };
  send_one(1);
  EXPECT_EQ(first.receive(1000).size(), 200u + 10u);  // the SRTP tag

  // The viewer nominates a pair from another address: media moves with it.
  ASSERT_TRUE(transport.on_binding_request(check(true, &storage), second.address, socket, now_ns()));
  EXPECT_TRUE(same(route->current().remote, second.address));
  second.receive(1000);  // the check's answer
  send_one(2);
  auto moved = second.receive(1000);
  EXPECT_EQ(moved.size(), 210u);
  EXPECT_EQ(moved.size() > 3 ? moved[3] : 0, 2);
  // A check from the old pair without USE-CANDIDATE is answered but moves nothing.
  EXPECT_FALSE(transport.on_binding_request(check(false, &storage), first.address, socket, now_ns()));
  EXPECT_TRUE(same(route->current().remote, second.address));
  transport.close();
}
