// DTLS-SRTP (gst/transport/dtls.cpp): a client and a server endpoint wired
// to each other in memory, as the load generator's viewer and the plugin's
// ICE-lite transport meet over UDP.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <thread>
#include <vector>

#include "transport/dtls.h"

namespace {

using wb::DtlsEndpoint;
using wb::DtlsIdentity;
using wb::DtlsRole;

// OpenSSL times retransmissions by the real clock, so the tests do too.
int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::shared_ptr<DtlsIdentity> make_identity() {
  std::string error;
  auto identity = DtlsIdentity::create(&error);
  EXPECT_TRUE(identity) << error;
  return identity;
}

// The two identities of the tests: key generation is the costly part.
const std::shared_ptr<DtlsIdentity> &client_identity() {
  static auto identity = make_identity();
  return identity;
}
const std::shared_ptr<DtlsIdentity> &server_identity() {
  static auto identity = make_identity();
  return identity;
}

// A fingerprint in lower case: SDP allows either.
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

struct Link {
  std::unique_ptr<DtlsEndpoint> client;
  std::unique_ptr<DtlsEndpoint> server;
  std::deque<std::vector<uint8_t>> to_client;
  std::deque<std::vector<uint8_t>> to_server;
  unsigned drop_to_server = 0;  // the next this many client datagrams are lost
  unsigned dropped = 0;
  unsigned sent_by_client = 0;

  Link(std::string fingerprint_of_client, std::string fingerprint_of_server,
       const std::shared_ptr<DtlsIdentity> &client_id = client_identity(),
       const std::shared_ptr<DtlsIdentity> &server_id = server_identity()) {
    client = std::make_unique<DtlsEndpoint>(client_id, DtlsRole::Client, std::move(fingerprint_of_server),
                                            [this](const uint8_t *d, size_t n) {
                                              EXPECT_LE(n, 1200u);
                                              ++sent_by_client;
                                              if (drop_to_server) {
                                                --drop_to_server;
                                                ++dropped;
                                                return;
                                              }
                                              to_server.emplace_back(d, d + n);
                                            });
    server = std::make_unique<DtlsEndpoint>(server_id, DtlsRole::Server, std::move(fingerprint_of_client),
                                            [this](const uint8_t *d, size_t n) {
                                              EXPECT_LE(n, 1200u);
                                              to_client.emplace_back(d, d + n);
                                            });
  }

  static bool handshaking(const DtlsEndpoint &e) { return !e.connected() && !e.failed(); }

  // Delivers datagrams, and runs timers when nothing is in flight, until
  // neither side is still handshaking and nothing is left to deliver.
  void pump(int max_rounds = 100) {
    for (int round = 0; round < max_rounds; ++round) {
      if (to_server.empty() && to_client.empty()) {
        if (!handshaking(*client) && !handshaking(*server)) return;
        int64_t deadline = std::min(client->next_deadline(), server->next_deadline());
        ASSERT_NE(deadline, INT64_MAX) << "handshaking with no timer";
        int64_t wait = deadline - now_ns();
        ASSERT_LT(wait, int64_t(5) * 1000000000) << "a retransmission more than 5 s away";
        if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
        client->on_timer(now_ns());
        server->on_timer(now_ns());
        continue;
      }
      while (!to_server.empty()) {
        std::vector<uint8_t> d = std::move(to_server.front());
        to_server.pop_front();
        server->on_datagram(d.data(), d.size(), now_ns());
      }
      while (!to_client.empty()) {
        std::vector<uint8_t> d = std::move(to_client.front());
        to_client.pop_front();
        client->on_datagram(d.data(), d.size(), now_ns());
      }
    }
    FAIL() << "no outcome after " << max_rounds << " rounds";
  }

  void start() {
    int64_t now = now_ns();
    server->start(now);
    client->start(now);
  }
};

TEST(Dtls, IdentityFingerprintLooksLikeSdp) {
  const std::string &f = client_identity()->fingerprint();
  ASSERT_EQ(f.size(), 32u * 3 - 1);  // sha-256: 32 hex pairs
  for (size_t i = 0; i < f.size(); ++i) {
    if (i % 3 == 2)
      EXPECT_EQ(f[i], ':');
    else
      EXPECT_TRUE(std::isdigit(f[i]) || (f[i] >= 'A' && f[i] <= 'F')) << f;
  }
  EXPECT_NE(client_identity()->fingerprint(), server_identity()->fingerprint());
}

TEST(Dtls, ClientAndServerAgreeOnKeys) {
  Link link(client_identity()->fingerprint(), lower(server_identity()->fingerprint()));
  link.start();
  // A server waiting for its ClientHello has no flight to retransmit: only
  // the give-up time.
  EXPECT_GT(link.server->next_deadline() - now_ns(), 14 * int64_t(1000000000));
  link.pump();
  ASSERT_TRUE(link.client->connected()) << link.client->failure();
  ASSERT_TRUE(link.server->connected()) << link.server->failure();
  EXPECT_EQ(link.client->next_deadline(), INT64_MAX);
  EXPECT_EQ(link.server->next_deadline(), INT64_MAX);

  const wb::SrtpKeyMaterial &c = link.client->keys();
  const wb::SrtpKeyMaterial &s = link.server->keys();
  EXPECT_EQ(0, std::memcmp(c.local, s.remote, wb::SrtpKeyMaterial::kKeySalt));
  EXPECT_EQ(0, std::memcmp(c.remote, s.local, wb::SrtpKeyMaterial::kKeySalt));
  EXPECT_NE(0, std::memcmp(c.local, c.remote, wb::SrtpKeyMaterial::kKeySalt));
  const uint8_t zeros[wb::SrtpKeyMaterial::kKeySalt] = {};
  EXPECT_NE(0, std::memcmp(c.local, zeros, sizeof zeros));
  // Both offer every profile: GCM, the server's first choice.
  EXPECT_EQ(c.profile, wb::SrtpProfile::AeadAes128Gcm);
  EXPECT_EQ(s.profile, wb::SrtpProfile::AeadAes128Gcm);
  // GCM's salts are 12 bytes (RFC 7714 12): the rest stays zero.
  EXPECT_EQ(0, std::memcmp(c.local + 28, zeros, 2));
  EXPECT_EQ(0, std::memcmp(c.remote + 28, zeros, 2));
}

// The server takes the first profile of its own list (GCM, CM-80, CM-32)
// that the client offers, whatever the client's order: GStreamer's DTLS (a
// relay's webrtcbin) offers only the CM ones.
TEST(Dtls, ServerPicksItsFavouriteOfWhatTheClientOffers) {
  using P = wb::SrtpProfile;
  struct Case {
    wb::SrtpProfiles offered;
    P expected;
  };
  for (const Case &c : {Case{{P::Aes128CmSha1_32, P::Aes128CmSha1_80}, P::Aes128CmSha1_80},
                        Case{{P::Aes128CmSha1_32}, P::Aes128CmSha1_32},
                        Case{{P::Aes128CmSha1_80, P::AeadAes128Gcm}, P::AeadAes128Gcm}}) {
    std::string error;
    auto offering = DtlsIdentity::create(&error, c.offered);
    ASSERT_TRUE(offering) << error;
    Link link(offering->fingerprint(), server_identity()->fingerprint(), offering);
    link.start();
    link.pump();
    ASSERT_TRUE(link.client->connected()) << link.client->failure();
    ASSERT_TRUE(link.server->connected()) << link.server->failure();
    EXPECT_EQ(link.server->keys().profile, c.expected) << wb::srtp_profile_name(c.expected);
    EXPECT_EQ(link.client->keys().profile, c.expected) << wb::srtp_profile_name(c.expected);
    EXPECT_EQ(0, std::memcmp(link.client->keys().local, link.server->keys().remote, wb::SrtpKeyMaterial::kKeySalt));
  }
}

TEST(Dtls, EveryHandshakeHasItsOwnKeys) {
  Link a(client_identity()->fingerprint(), server_identity()->fingerprint());
  Link b(client_identity()->fingerprint(), server_identity()->fingerprint());
  a.start();
  b.start();
  a.pump();
  b.pump();
  ASSERT_TRUE(a.client->connected() && b.client->connected());
  EXPECT_NE(0, std::memcmp(a.client->keys().local, b.client->keys().local, wb::SrtpKeyMaterial::kKeySalt));
}

TEST(Dtls, ServerRejectsTheWrongClientCertificate) {
  // The server was told another certificate's fingerprint.
  Link link(server_identity()->fingerprint(), server_identity()->fingerprint());
  link.start();
  link.pump();
  ASSERT_TRUE(link.server->failed());
  EXPECT_NE(link.server->failure().find("fingerprint"), std::string::npos) << link.server->failure();
  EXPECT_NE(link.server->failure().find("client"), std::string::npos) << link.server->failure();
  // Its Finished had left before the check; its close_notify tells the
  // client not to wait for media.
  EXPECT_FALSE(link.client->connected());
  EXPECT_TRUE(link.client->failed());
}

TEST(Dtls, ClientRejectsTheWrongServerCertificate) {
  Link link(client_identity()->fingerprint(), client_identity()->fingerprint());
  link.start();
  link.pump();
  ASSERT_TRUE(link.client->failed());
  EXPECT_NE(link.client->failure().find("fingerprint"), std::string::npos) << link.client->failure();
  EXPECT_NE(link.client->failure().find("server"), std::string::npos) << link.client->failure();
  EXPECT_FALSE(link.server->connected());
  EXPECT_TRUE(link.server->failed());
}

TEST(Dtls, LostClientHelloIsRetransmitted) {
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  link.drop_to_server = 1;
  int64_t started = now_ns();
  link.start();
  ASSERT_EQ(link.dropped, 1u);
  ASSERT_TRUE(link.to_server.empty());
  // The first retransmission comes after 250 ms, not OpenSSL's 1 s.
  int64_t wait = link.client->next_deadline() - started;
  EXPECT_GE(wait, 200 * 1000000);
  EXPECT_LE(wait, 300 * 1000000);
  link.pump();
  ASSERT_TRUE(link.client->connected()) << link.client->failure();
  ASSERT_TRUE(link.server->connected()) << link.server->failure();
  EXPECT_GE(now_ns() - started, 200 * 1000000);
  EXPECT_EQ(0, std::memcmp(link.client->keys().local, link.server->keys().remote, wb::SrtpKeyMaterial::kKeySalt));
}

TEST(Dtls, LostFinalFlightIsRetransmitted) {
  // The client's second flight (certificate ... Finished) is lost once: the
  // client retransmits it, the server then completes.
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  link.start();
  ASSERT_EQ(link.to_server.size(), 1u);  // ClientHello
  link.server->on_datagram(link.to_server.front().data(), link.to_server.front().size(), now_ns());
  link.to_server.clear();
  ASSERT_FALSE(link.to_client.empty());
  link.drop_to_server = 100;  // whatever the client answers right away
  while (!link.to_client.empty()) {
    std::vector<uint8_t> d = std::move(link.to_client.front());
    link.to_client.pop_front();
    link.client->on_datagram(d.data(), d.size(), now_ns());
  }
  ASSERT_GT(link.dropped, 0u);
  link.drop_to_server = 0;
  link.pump();
  ASSERT_TRUE(link.client->connected()) << link.client->failure();
  ASSERT_TRUE(link.server->connected()) << link.server->failure();
}

TEST(Dtls, LostServerFinishedIsRetransmitted) {
  // The server completes first; its CCS and Finished are lost once. The
  // client retransmits its last flight and the connected server answers it
  // with its own again.
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  link.start();
  for (int exchange = 0; exchange < 10 && !link.server->connected(); ++exchange) {
    while (!link.to_server.empty()) {
      std::vector<uint8_t> d = std::move(link.to_server.front());
      link.to_server.pop_front();
      link.server->on_datagram(d.data(), d.size(), now_ns());
    }
    if (link.server->connected()) break;
    while (!link.to_client.empty()) {
      std::vector<uint8_t> d = std::move(link.to_client.front());
      link.to_client.pop_front();
      link.client->on_datagram(d.data(), d.size(), now_ns());
    }
  }
  ASSERT_TRUE(link.server->connected()) << link.server->failure();
  ASSERT_FALSE(link.client->connected());
  ASSERT_FALSE(link.to_client.empty());
  link.to_client.clear();
  link.pump();
  ASSERT_TRUE(link.client->connected()) << link.client->failure();
  ASSERT_TRUE(link.server->connected()) << link.server->failure();
  EXPECT_EQ(0, std::memcmp(link.client->keys().remote, link.server->keys().local, wb::SrtpKeyMaterial::kKeySalt));
}

TEST(Dtls, ServerGivesUpWithoutClientHello) {
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  int64_t start = 1000;
  link.server->start(start);
  EXPECT_EQ(link.server->next_deadline(), start + int64_t(15) * 1000000000);
  link.server->on_timer(start + int64_t(14) * 1000000000);
  EXPECT_FALSE(link.server->failed());
  link.server->on_timer(start + int64_t(15) * 1000000000);
  ASSERT_TRUE(link.server->failed());
  EXPECT_NE(link.server->failure().find("timed out"), std::string::npos) << link.server->failure();
  EXPECT_TRUE(link.to_client.empty());
}

TEST(Dtls, ServerStartsOnAnEarlyClientHello) {
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  link.client->start(now_ns());  // the server's start() is never called
  link.pump();
  EXPECT_TRUE(link.client->connected()) << link.client->failure();
  EXPECT_TRUE(link.server->connected()) << link.server->failure();
}

TEST(Dtls, CloseSendsCloseNotifyOnce) {
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  link.start();
  link.pump();
  ASSERT_TRUE(link.client->connected() && link.server->connected());
  unsigned before = link.sent_by_client;
  link.client->close();
  link.client->close();
  EXPECT_EQ(link.sent_by_client, before + 1);
  EXPECT_FALSE(link.client->connected());
  EXPECT_FALSE(link.client->failed());
  ASSERT_EQ(link.to_server.size(), 1u);
  link.server->on_datagram(link.to_server.front().data(), link.to_server.front().size(), now_ns());
  ASSERT_TRUE(link.server->failed());
  EXPECT_NE(link.server->failure().find("closed"), std::string::npos) << link.server->failure();
}

// What a connected viewer holds once it has proved it has the keys: the
// keys and a close_notify written in advance, no OpenSSL state.
TEST(Dtls, ReleasedStateKeepsTheKeysAndAValidCloseNotify) {
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  link.start();
  link.pump();
  ASSERT_TRUE(link.client->connected() && link.server->connected());
  wb::SrtpKeyMaterial keys = link.server->keys();
  link.server->release();
  link.server->release();
  EXPECT_TRUE(link.server->released());
  EXPECT_TRUE(link.server->connected());
  EXPECT_EQ(0, std::memcmp(keys.local, link.server->keys().local, wb::SrtpKeyMaterial::kKeySalt));
  EXPECT_EQ(0, std::memcmp(keys.remote, link.server->keys().remote, wb::SrtpKeyMaterial::kKeySalt));
  EXPECT_TRUE(link.to_client.empty()) << "release() sent something";
  // Whatever DTLS the client still sends is ignored, without a reply.
  link.client->close();
  ASSERT_EQ(link.to_server.size(), 1u);
  link.server->on_datagram(link.to_server.front().data(), link.to_server.front().size(), now_ns());
  link.to_server.clear();
  EXPECT_TRUE(link.server->connected());
  EXPECT_TRUE(link.to_client.empty());

  // A fresh pair: the server's close_notify, sealed at release(), is read
  // by the client as the end of the association, once.
  Link fresh(client_identity()->fingerprint(), server_identity()->fingerprint());
  fresh.start();
  fresh.pump();
  ASSERT_TRUE(fresh.client->connected() && fresh.server->connected());
  fresh.server->release();
  fresh.server->close();
  fresh.server->close();
  EXPECT_FALSE(fresh.server->connected());
  ASSERT_EQ(fresh.to_client.size(), 1u);
  fresh.client->on_datagram(fresh.to_client.front().data(), fresh.to_client.front().size(), now_ns());
  ASSERT_TRUE(fresh.client->failed());
  EXPECT_NE(fresh.client->failure().find("closed"), std::string::npos) << fresh.client->failure();
}

TEST(Dtls, ReleaseBeforeConnectedDoesNothing) {
  Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
  link.server->release();  // idle
  link.start();
  link.pump();
  ASSERT_TRUE(link.server->connected());
  EXPECT_FALSE(link.server->released());
}

// One identity's SSL_CTX serves endpoints on several threads at once, as
// the plugin's streaming threads and the load generator's loop would.
TEST(Dtls, SharedIdentitiesAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 8;
  std::vector<int> connected(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &connected] {
      for (int i = 0; i < kPerThread; ++i) {
        Link link(client_identity()->fingerprint(), server_identity()->fingerprint());
        link.start();
        link.pump();
        if (link.client->connected() && link.server->connected() &&
            std::memcmp(link.client->keys().local, link.server->keys().remote, wb::SrtpKeyMaterial::kKeySalt) == 0)
          ++connected[t];
      }
    });
  }
  for (auto &thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(connected[t], kPerThread) << "thread " << t;
}

}  // namespace
