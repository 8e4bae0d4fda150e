// One viewer's transport on the ICE-lite port, driven over real UDP
// sockets on loopback: a viewer (a STUN client and a DTLS client of our
// own) connects, then nominates another pair, and the media must follow.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>
#include <cstring>
#include <ctime>
#include <vector>

#include "common/debug.h"
#include "fanout/senderpool.h"
#include "transport/iceliteport.h"
#include "transport/litetransport.h"
#include "transport/rtcp.h"
#include "transport/srtcpcontext.h"
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
const char kViewerUfrag[] = "viewerU";
const char kViewerPwd[] = "viewer-password-9876543210";

// A connectivity check from the viewer (the controlling agent).
stun::Message check(bool nominate, std::vector<uint8_t> *storage) {
  stun::TransactionId id{};
  for (auto &b : id) b = uint8_t(rand());
  stun::Writer w(stun::kBindingRequest, id);
  w.add_string(stun::kUsername, std::string(kServerUfrag) + ":" + kViewerUfrag);
  w.add_u32(stun::kPriority, 1000);
  w.add_u64(stun::kIceControlling, 42);
  if (nominate) w.add(stun::kUseCandidate, nullptr, 0);
  *storage = w.finish(kServerPwd);
  stun::Message message;
  EXPECT_TRUE(message.parse(storage->data(), storage->size()));
  return message;
}

// What the viewer's agent answers to a check of ours it can verify
// (signed with `key`: its own password, or a forger's guess).
std::vector<uint8_t> answer_to(const stun::Message &request, const sockaddr_in &from, const std::string &key) {
  stun::Writer w(stun::kBindingSuccess, request.transaction());
  w.add_xor_mapped_address(from);
  return w.finish(key);
}

// Our check as the viewer at `at` receives it, if one arrives within `ms`.
bool receive_check(const Udp &at, int ms, std::vector<uint8_t> *storage, stun::Message *message) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    *storage = at.receive(10);
    if (storage->empty() || !message->parse(storage->data(), storage->size())) continue;
    if (message->type() == stun::kBindingRequest) return true;
  }
  return false;
}

ConsentTiming fast_timing() {
  ConsentTiming timing;
  timing.consent_interval_ns = 200000000;
  timing.consent_timeout_ns = 1000000000;
  timing.probe_interval_ns = 50000000;
  timing.probe_tries = 3;
  return timing;
}

// An ICE-lite port on 127.0.0.1 (a port the system picks unless given),
// and where it is.
std::shared_ptr<IceLitePort> open_loopback_port(std::string *why, uint16_t number = 0) {
  IceLitePort::Config config;
  config.addresses = {"127.0.0.1"};
  config.port = number;
  return IceLitePort::open(config, why);
}

sockaddr_in address_of(const IceLitePort &port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port.candidates()[0].port);
  return address;
}

// A transport on `port_udp` whose viewer connected from `first` over
// real DTLS, and a sender of SRTP along its media route.
struct Connected {
  std::shared_ptr<DtlsIdentity> server_id, viewer_id;
  Udp port_udp, first;
  std::shared_ptr<PortSocket> socket;
  std::unique_ptr<LiteTransport> transport;
  std::unique_ptr<DtlsEndpoint> viewer;
  std::shared_ptr<MediaRoute> route;
  std::unique_ptr<SrtpSender> sender;
  std::vector<uint8_t> rtp = std::vector<uint8_t>(200, 0);
  LiteTransport::Listener listener;  // set before connect()

  void connect(ConsentTiming timing = ConsentTiming{}) {
    debug_init();
    std::string error;
    server_id = DtlsIdentity::create(&error);
    viewer_id = DtlsIdentity::create(&error);
    ASSERT_TRUE(server_id && viewer_id) << error;
    socket = std::make_shared<PortSocket>(dup(port_udp.fd), port_udp.address, true);
    transport = std::make_unique<LiteTransport>(kServerUfrag, kServerPwd, LiteTransport::RemoteIce{kViewerUfrag, kViewerPwd},
                                                server_id, DtlsRole::Server, viewer_id->fingerprint(),
                                                listener, timing);
    std::vector<uint8_t> storage;
    ASSERT_EQ(transport->on_binding_request(check(true, &storage), first.address, socket, false, now_ns()),
              LiteTransport::Check::Moved);
    // The check is answered from the port's socket.
    ASSERT_FALSE(first.receive(1000).empty());

    viewer = std::make_unique<DtlsEndpoint>(viewer_id, DtlsRole::Client, server_id->fingerprint(),
                                            [this](const uint8_t *d, size_t n) { first.send_to(port_udp.address, d, n); });
    viewer->start(now_ns());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((transport->state() != LiteTransport::State::Connected || !viewer->connected()) &&
           std::chrono::steady_clock::now() < deadline) {
      auto to_port = port_udp.receive(5);
      if (!to_port.empty()) transport->on_datagram(to_port.data(), to_port.size(), now_ns());
      auto to_viewer = first.receive(5);
      if (!to_viewer.empty() && to_viewer[0] >= 20) viewer->on_datagram(to_viewer.data(), to_viewer.size(), now_ns());
      transport->on_tick(now_ns());
      if (now_ns() >= viewer->next_deadline()) viewer->on_timer(now_ns());
    }
    ASSERT_EQ(transport->state(), LiteTransport::State::Connected);
    ASSERT_TRUE(viewer->connected());
    route = transport->media_route();
    ASSERT_TRUE(route);
    EXPECT_TRUE(same(route->current().remote, first.address));
    sender = SrtpSender::create(route, transport->keys().local, transport->keys().profile, &error);
    ASSERT_TRUE(sender) << error;
    rtp[0] = 0x80;
    rtp[1] = 96;
  }
  // What send_one() puts on the wire: the packet and the SRTP tag of the
  // profile DTLS agreed (GCM between two of our endpoints).
  size_t sent_size() const { return rtp.size() + wb::srtp_profile_sizes(transport->keys().profile).rtp_tag; }
  void send_one(uint16_t seq) {
    rtp[2] = uint8_t(seq >> 8);
    rtp[3] = uint8_t(seq);
    RtpPacketRef ref{rtp.data(), rtp.size(), 12, 0};
    SendBatch &batch = SendBatch::for_this_thread();
    sender->send(&ref, 1, Rewrite{96, 1234}, batch);
    batch.flush();
  }
  // The next SRTP packet (not STUN) arriving at `at` within `ms`.
  std::vector<uint8_t> media_at(const Udp &at, int ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      auto got = at.receive(10);
      if (!got.empty() && got[0] >= 128) return got;
    }
    return {};
  }
  ~Connected() {
    if (transport) transport->close();
  }
};

}  // namespace

TEST(LiteTransport, MediaFollowsANominationOnceTheNewAddressAnswersOurCheck) {
  Connected c;
  ASSERT_NO_FATAL_FAILURE(c.connect());
  c.send_one(1);
  EXPECT_EQ(c.media_at(c.first, 1000).size(), c.sent_size());

  // The viewer nominates a pair from another address: it is answered and
  // checked, and media stays where it was until that address answers.
  Udp second;
  std::vector<uint8_t> storage, ours;
  EXPECT_EQ(c.transport->on_binding_request(check(true, &storage), second.address, c.socket, false, now_ns()),
            LiteTransport::Check::Probing);
  EXPECT_TRUE(same(c.route->current().remote, c.first.address));
  stun::Message probe;
  ASSERT_TRUE(receive_check(second, 1000, &ours, &probe));
  EXPECT_EQ(probe.username(), std::string(kViewerUfrag) + ":" + kServerUfrag);
  EXPECT_TRUE(probe.integrity_ok(kViewerPwd));
  size_t len;
  EXPECT_TRUE(probe.find(stun::kIceControlled, &len));

  // An answer signed with anything but the viewer's password moves nothing.
  auto forged = answer_to(probe, c.port_udp.address, "not-the-viewer-password");
  stun::Message forged_message;
  ASSERT_TRUE(forged_message.parse(forged.data(), forged.size()));
  EXPECT_FALSE(c.transport->on_binding_response(forged_message, second.address, c.socket, now_ns()));
  // Nor does the right answer from another address.
  auto genuine = answer_to(probe, c.port_udp.address, kViewerPwd);
  stun::Message answer;
  ASSERT_TRUE(answer.parse(genuine.data(), genuine.size()));
  EXPECT_FALSE(c.transport->on_binding_response(answer, c.first.address, c.socket, now_ns()));
  c.send_one(2);
  EXPECT_EQ(c.media_at(c.first, 1000).size(), c.sent_size());

  EXPECT_TRUE(c.transport->on_binding_response(answer, second.address, c.socket, now_ns()));
  EXPECT_TRUE(same(c.route->current().remote, second.address));
  c.send_one(3);
  auto moved = c.media_at(second, 1000);
  EXPECT_EQ(moved.size(), c.sent_size());
  EXPECT_EQ(moved.size() > 3 ? moved[3] : 0, 3);
  // A check from the old pair without USE-CANDIDATE is answered but moves nothing.
  EXPECT_EQ(c.transport->on_binding_request(check(false, &storage), c.first.address, c.socket, false, now_ns()),
            LiteTransport::Check::Answered);
  EXPECT_TRUE(same(c.route->current().remote, second.address));
}

// A viewer forging the source of a nominating check (RFC 8445 checks prove
// nothing about their source) must not turn the node into a reflector: the
// forged address gets our few checks and never a media packet.
TEST(LiteTransport, ANominationFromAnAddressThatDoesNotAnswerMovesNothing) {
  Connected c;
  ASSERT_NO_FATAL_FAILURE(c.connect(fast_timing()));
  Udp victim;
  std::vector<uint8_t> storage;
  EXPECT_EQ(c.transport->on_binding_request(check(true, &storage), victim.address, c.socket, false, now_ns()),
            LiteTransport::Check::Probing);
  // Forging from many more addresses at once buys no more checks.
  std::vector<Udp> others(10);
  for (const Udp &other : others)
    EXPECT_EQ(c.transport->on_binding_request(check(true, &storage), other.address, c.socket, false, now_ns()),
              LiteTransport::Check::Answered);
  unsigned checks = 0, media = 0, other = 0, others_checked = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
  uint16_t seq = 10;
  while (std::chrono::steady_clock::now() < until) {
    c.transport->on_tick(now_ns());
    c.send_one(seq++);
    for (auto got = c.first.receive(5); !got.empty(); got = c.first.receive(0)) {
      // Keep consent at the real address.
      stun::Message m;
      if (m.parse(got.data(), got.size()) && m.type() == stun::kBindingRequest) {
        auto reply = answer_to(m, c.port_udp.address, kViewerPwd);
        stun::Message r;
        r.parse(reply.data(), reply.size());
        c.transport->on_binding_response(r, c.first.address, c.socket, now_ns());
      }
    }
    for (const Udp &o : others)
      for (auto got = o.receive(0); !got.empty(); got = o.receive(0)) {
        stun::Message m;
        others_checked += m.parse(got.data(), got.size()) && m.type() == stun::kBindingRequest;
        media += got[0] >= 128;
      }
    for (auto got = victim.receive(0); !got.empty(); got = victim.receive(0)) {
      stun::Message m;
      if (m.parse(got.data(), got.size()) && m.type() == stun::kBindingRequest) ++checks;
      else if (got[0] >= 128) ++media;
      else ++other;
    }
  }
  EXPECT_EQ(media, 0u);
  EXPECT_EQ(checks, fast_timing().probe_tries);
  EXPECT_EQ(others_checked, 0u);
  EXPECT_EQ(other, 1u);  // the answer to the forged check itself
  EXPECT_TRUE(same(c.route->current().remote, c.first.address));
  EXPECT_EQ(c.transport->state(), LiteTransport::State::Connected);
  c.send_one(seq);
  EXPECT_EQ(c.media_at(c.first, 1000).size(), c.sent_size());
}

// RFC 7675: a viewer that stops answering our consent checks stops getting
// media within the consent timeout, and the transport fails.
TEST(LiteTransport, MediaStopsWhenConsentIsNotRefreshed) {
  Connected c;
  ASSERT_NO_FATAL_FAILURE(c.connect(fast_timing()));
  // Answering: still connected after three timeouts' worth of time.
  unsigned answered = 0;
  auto run_for = [&](int ms, bool answer) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until && c.transport->state() == LiteTransport::State::Connected) {
      c.transport->on_tick(now_ns());
      for (auto got = c.first.receive(5); !got.empty(); got = c.first.receive(0)) {
        stun::Message m;
        if (!answer || !m.parse(got.data(), got.size()) || m.type() != stun::kBindingRequest) continue;
        auto reply = answer_to(m, c.port_udp.address, kViewerPwd);
        stun::Message r;
        r.parse(reply.data(), reply.size());
        c.transport->on_binding_response(r, c.first.address, c.socket, now_ns());
        ++answered;
      }
    }
  };
  run_for(3000, true);
  EXPECT_EQ(c.transport->state(), LiteTransport::State::Connected);
  EXPECT_GE(answered, 8u);
  c.send_one(1);
  EXPECT_EQ(c.media_at(c.first, 1000).size(), c.sent_size());

  const auto silent_from = std::chrono::steady_clock::now();
  run_for(3000, false);
  EXPECT_EQ(c.transport->state(), LiteTransport::State::Failed);
  const auto waited = std::chrono::steady_clock::now() - silent_from;
  EXPECT_LT(waited, std::chrono::milliseconds(1500));
  EXPECT_GE(waited, std::chrono::milliseconds(700));
  c.send_one(2);
  EXPECT_TRUE(c.media_at(c.first, 300).empty());
}

// An address a live viewer holds is never handed to another viewer's check,
// even one with valid credentials of its own.
TEST(IceLitePort, AnAddressAnotherViewerHoldsIsNotTaken) {
  debug_init();
  std::string why;
  auto port = open_loopback_port(&why);
  ASSERT_TRUE(port) << why;
  const sockaddr_in port_address = address_of(*port);
  std::string error;
  auto viewer_id = DtlsIdentity::create(&error);
  auto a = port->add({"viewerA", "password-of-viewer-a-000"}, DtlsRole::Server, viewer_id->fingerprint(), {});
  auto b = port->add({"viewerB", "password-of-viewer-b-000"}, DtlsRole::Server, viewer_id->fingerprint(), {});

  auto send_check = [&](const Udp &from, const LiteTransport &to, const char *their_ufrag) {
    stun::Writer w(stun::kBindingRequest, stun::random_transaction());
    w.add_string(stun::kUsername, to.local_ufrag() + ":" + their_ufrag);
    w.add_u64(stun::kIceControlling, 1);
    w.add(stun::kUseCandidate, nullptr, 0);
    const auto &bytes = w.finish(to.local_pwd());
    from.send_to(port_address, bytes.data(), bytes.size());
  };
  auto wait_for = [](const std::function<bool()> &done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return done();
  };
  Udp shared;
  send_check(shared, *a, "viewerA");
  ASSERT_TRUE(wait_for([&] { return a->stats().remote_address == "127.0.0.1:" + std::to_string(ntohs(shared.address.sin_port)); }));
  // B's own valid check from A's address: answered, never taken.
  send_check(shared, *b, "viewerB");
  unsigned answers = 0;
  ASSERT_TRUE(wait_for([&] {
    for (auto got = shared.receive(5); !got.empty(); got = shared.receive(0)) {
      stun::Message m;
      if (m.parse(got.data(), got.size()) && m.type() == stun::kBindingSuccess) ++answers;
    }
    return answers >= 2;
  }));
  EXPECT_EQ(b->stats().remote_address, "");
  EXPECT_EQ(a->stats().remote_address, "127.0.0.1:" + std::to_string(ntohs(shared.address.sin_port)));
  // Once A is gone, the address is free for B.
  port->remove(a);
  send_check(shared, *b, "viewerB");
  EXPECT_TRUE(wait_for([&] { return !b->stats().remote_address.empty(); }));
  port->remove(b);
}

// Whether this kernel (or emulator) takes a reuseport steering program.
static bool kernel_steers_reuseport_groups() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sock_filter first[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog program = {1, first};
  const bool steers = bind(fd, reinterpret_cast<sockaddr *>(&local), sizeof local) == 0 &&
                      setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program) == 0;
  ::close(fd);
  return steers;
}

TEST(IceLitePort, ChecksStillReachThePortWhenSenderShardsBindItToo) {
  debug_init();
  std::string why;
  auto port = open_loopback_port(&why);
  ASSERT_TRUE(port) << why;
  if (port->socket_fds().empty()) {
    // The port found no steering: it must be because this kernel has none.
    ASSERT_FALSE(kernel_steers_reuseport_groups()) << "the kernel can steer, the port did not";
    GTEST_SKIP() << "no SO_ATTACH_REUSEPORT_CBPF here (qemu-user?): the shards send through the port's socket";
  }
  // Four more sockets on the same address and port: without the port's
  // steering, the kernel would hand most viewers' datagrams to them.
  SenderPool senders(4);
  ASSERT_TRUE(senders.send_from_own_sockets(port->socket_fds()[0], &why)) << why;
  const sockaddr_in port_address = address_of(*port);
  std::string error;
  auto viewer_id = DtlsIdentity::create(&error);
  auto transport = port->add({"viewerU", "password-of-the-viewer-0"}, DtlsRole::Server, viewer_id->fingerprint(), {});
  // Viewers at many addresses (the kernel spreads by address and port).
  std::vector<std::unique_ptr<Udp>> viewers;
  for (int i = 0; i < 24; ++i) {
    viewers.push_back(std::make_unique<Udp>());
    stun::Writer w(stun::kBindingRequest, stun::random_transaction());
    w.add_string(stun::kUsername, transport->local_ufrag() + ":viewerU");
    w.add_u64(stun::kIceControlling, 1);
    const auto &bytes = w.finish(transport->local_pwd());
    viewers.back()->send_to(port_address, bytes.data(), bytes.size());
  }
  unsigned answered = 0;
  for (auto &viewer : viewers) {
    auto got = viewer->receive(2000);
    stun::Message m;
    answered += !got.empty() && m.parse(got.data(), got.size()) && m.type() == stun::kBindingSuccess;
  }
  EXPECT_EQ(answered, viewers.size());
  port->remove(transport);
}

TEST(IceLitePort, APortAnotherNodeHoldsIsRefused) {
  debug_init();
  std::string why;
  auto first = open_loopback_port(&why);
  ASSERT_TRUE(first) << why;
  // Both would set SO_REUSEPORT; the second must still be told.
  auto second = open_loopback_port(&why, first->candidates()[0].port);
  EXPECT_FALSE(second);
  EXPECT_NE(why.find("Address already in use"), std::string::npos) << why;
}

// While the viewer's feedback says its link is probed, our sender reports
// go every 100 ms, so that each receiver report's round trip is recent;
// otherwise once a second.
TEST(LiteTransport, SenderReportsComeEvery100MsWhileTheLinkIsProbed) {
  Connected c;
  std::atomic<bool> probed{false};
  std::atomic<int> feedbacks{0};
  c.listener.feedback = [&](const rtcp::Feedback &) {
    ++feedbacks;
    return probed.load();
  };
  c.connect();
  if (HasFatalFailure()) return;
  auto counters = std::make_shared<SentCounters>();
  counters->record(1, 100, 1000, 0);
  c.transport->add_sent_stream({4321, 90000, counters});
  // Sender reports seen at the viewer over `ms` of ticks 50 ms apart (the
  // port's), from `*t` on.
  auto reports_over = [&](int64_t *t, int ms) {
    int reports = 0;
    for (int64_t end = *t + int64_t(ms) * 1000000; *t < end; *t += 50000000) {
      c.transport->on_tick(*t);
      for (auto got = c.first.receive(5); !got.empty(); got = c.first.receive(5))
        if (got.size() > 8 && got[1] == 200) ++reports;
    }
    return reports;
  };
  // A receiver report from the viewer, protected with its key (one
  // context: the SRTCP index goes on).
  auto srtcp = SrtcpContext::create(c.transport->keys().profile, c.viewer->keys().local);
  ASSERT_TRUE(srtcp);
  auto receiver_report = [&]() {
    rtcp::Compound rr(99);
    rtcp::ReportBlock block;
    block.ssrc = 4321;
    rr.receiver_report({block});
    std::vector<uint8_t> packet(rr.bytes());
    packet.resize(packet.size() + SrtcpContext::kMaxTrailer);
    size_t len = rr.bytes().size();
    ASSERT_TRUE(srtcp->protect(packet.data(), &len));
    c.transport->on_datagram(packet.data(), len, now_ns());
  };
  int64_t t = now_ns();
  EXPECT_EQ(reports_over(&t, 3000), 3) << "the first at once, then one a second";
  probed = true;
  receiver_report();
  ASSERT_EQ(feedbacks.load(), 1);
  const int fast = reports_over(&t, 2000);
  EXPECT_GE(fast, 19);
  EXPECT_LE(fast, 21);
  probed = false;
  receiver_report();
  ASSERT_EQ(feedbacks.load(), 2);
  const int slow = reports_over(&t, 3000);
  EXPECT_GE(slow, 2);
  EXPECT_LE(slow, 4);
}
