// What a stranger on HTTP can do to a node, over real HTTP on loopback:
// descriptors and memory come back, bodies are refused before they are
// kept, slow and surplus connections are closed, offers are limited per
// address and while pending, and the viewer already watching loses nothing.
#include <arpa/inet.h>
#include <gio/gio.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <regex>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

// A raw TCP client: for what an HTTP library will not send.
struct Raw {
  int fd = -1;
  explicit Raw(unsigned port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(uint16_t(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof to) != 0) {
      close(fd);
      fd = -1;
    }
  }
  ~Raw() {
    if (fd >= 0) close(fd);
  }
  bool send_all(const std::string &data) const {
    for (size_t at = 0; at < data.size();) {
      ssize_t n = send(fd, data.data() + at, data.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += size_t(n);
    }
    return true;
  }
  // Everything the server sends until it closes, or until `ms` pass.
  std::string read_until_closed(int ms, bool *closed) const {
    std::string got;
    *closed = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        *closed = true;
        break;
      }
      got.append(buf, size_t(n));
    }
    return got;
  }
};

class Abuse : public WatchedBroadcast {
 protected:
  void TearDown() override {
    if (broadcast_) expect_watcher_served();
  }
};

}  // namespace

// 500 requests of every kind; each connection the client closed is closed
// by the server too (libsoup 3.2 kept idle kept-alive ones for ever).
TEST_F(Abuse, DescriptorsComeBackAfter500RequestsOfEveryKind) {
  ASSERT_NO_FATAL_FAILURE(start("offers-per-second=0"));
  const std::string offer = make_offer({});
  const unsigned before = open_descriptors();
  std::map<int, unsigned> statuses;
  for (unsigned i = 0; i < 500; ++i) {
    HttpResponse r;
    switch (i % 10) {
      case 0: r = http_request("GET", url("/")); break;
      case 1: r = http_request("OPTIONS", url()); break;
      case 2: r = http_request("GET", url("/whep/status")); break;
      case 3: r = http_request("GET", url("/nope")); break;
      case 4: r = http_request("GET", url()); break;
      case 5: r = http_request("POST", url(), "text/plain", "x"); break;
      case 6: r = http_request("POST", url(), "application/sdp", "not sdp"); break;
      case 7: r = http_request("DELETE", url("/whep/0123")); break;
      case 8: r = http_request("POST", url(), "application/sdp", std::string(70 * 1024, 'v')); break;
      case 9: {
        r = http_request("POST", url(), "application/sdp", offer);
        if (r.status == 201) ++statuses[http_request("DELETE", url(r.header("location"))).status];
        break;
      }
    }
    ++statuses[r.status];
  }
  EXPECT_EQ(statuses[200], 150u);  // page, status, DELETE of each session
  EXPECT_EQ(statuses[201], 50u);
  EXPECT_EQ(statuses[204], 50u);
  EXPECT_EQ(statuses[404], 100u);
  EXPECT_EQ(statuses[405], 50u);
  EXPECT_EQ(statuses[415], 50u);
  EXPECT_EQ(statuses[400], 50u);
  EXPECT_EQ(statuses[413], 50u);
  EXPECT_TRUE(wait_until([&] { return open_descriptors() <= before + 2; }, 5000ms))
      << before << " descriptors before, " << open_descriptors() << " after";
}

// Every HTTP connection's GSocket is freed once it is closed, not only its
// descriptor (libsoup 3.2 kept a reference to each for ever: ~340 bytes per
// viewer session, the soak's growing RSS).
TEST_F(Abuse, SocketsAreFreedAfterTheirConnectionsClose) {
  ASSERT_NO_FATAL_FAILURE(start("offers-per-second=0"));
  const std::string offer = make_offer({});
  InstanceCount<g_socket_get_type> sockets;
  for (unsigned i = 0; i < 100; ++i) {
    ASSERT_EQ(http_request("GET", url("/whep/status")).status, 200);
    HttpResponse r = http_request("POST", url(), "application/sdp", offer);
    ASSERT_EQ(r.status, 201);
    ASSERT_EQ(http_request("DELETE", url(r.header("location"))).status, 200);
  }
  // 300 connections, each counted in and out; a few may still be closing.
  EXPECT_TRUE(wait_until([&] { return sockets.alive() <= 2; }, 5000ms))
      << sockets.alive() << " GSockets made during 300 connections are still alive";
}

// A body is never kept whole before its size is checked: a declared 64 MB,
// or a chunked one growing past the limit, is refused (413) while memory
// stays where it was.
TEST_F(Abuse, LargeBodiesAreRefusedWithoutBeingKept) {
  ASSERT_NO_FATAL_FAILURE(start(""));
  const long before = rss_kb();
  const std::string block(64 * 1024, 'x');
  const unsigned port = broadcast_->port();
  {
    Raw client(port);
    ASSERT_GE(client.fd, 0);
    ASSERT_TRUE(client.send_all("POST /whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n"
                                "Content-Length: 67108864\r\n\r\n"));
    for (unsigned i = 0; i < 1024 && client.send_all(block); ++i) {
    }
    bool closed;
    std::string reply = client.read_until_closed(5000, &closed);
    EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply.substr(0, 200);
  }
  {
    Raw client(port);
    ASSERT_GE(client.fd, 0);
    ASSERT_TRUE(client.send_all("POST /whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"));
    char size_line[32];
    snprintf(size_line, sizeof size_line, "%zx\r\n", block.size());
    for (unsigned i = 0; i < 1024 && client.send_all(size_line + block + "\r\n"); ++i) {
    }
    client.send_all("0\r\n\r\n");
    bool closed;
    std::string reply = client.read_until_closed(5000, &closed);
    EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply.substr(0, 200);
  }
  const long grown = rss_kb() - before;
  std::printf("[ rss      ] %ld kB before, grew by %ld kB after two 64 MB bodies\n", before, grown);
  EXPECT_LT(grown, 16 * 1024);
}

// Slowloris: a connection that never completes its request is closed at
// the deadline, while others are served meanwhile.
TEST_F(Abuse, ConnectionsWithoutACompleteRequestAreClosedAtTheDeadline) {
  ASSERT_NO_FATAL_FAILURE(start("http-request-timeout=1"));
  std::vector<std::unique_ptr<Raw>> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(std::make_unique<Raw>(broadcast_->port()));
    ASSERT_TRUE(slow.back()->send_all("GET / HTTP/1.1\r\nHost: x\r\n"));  // never the blank line
  }
  EXPECT_EQ(http_request("GET", url("/")).status, 200);
  const auto started = std::chrono::steady_clock::now();
  for (auto &client : slow) {
    bool closed;
    client->read_until_closed(4000, &closed);
    EXPECT_TRUE(closed);
  }
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(waited, 3.0);
}

// Connections beyond max-http-connections are closed at once; once the
// idle ones are gone, requests are served again.
TEST_F(Abuse, ConnectionsBeyondTheCapAreClosed) {
  ASSERT_NO_FATAL_FAILURE(start("max-http-connections=5"));
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 5; ++i) idle.push_back(std::make_unique<Raw>(broadcast_->port()));
  // The server sees them once it accepted them: wait until one more is refused.
  bool refused = false;
  ASSERT_TRUE(wait_until([&] {
    Raw extra(broadcast_->port());
    extra.send_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string reply = extra.read_until_closed(1000, &refused);
    return refused && reply.empty();
  }, 5000ms));
  idle.clear();
  EXPECT_TRUE(wait_until([&] { return http_request("GET", url("/")).status == 200; }, 5000ms));
}

// One address gets offers-per-second, in bursts of twice that; then 429.
TEST_F(Abuse, OffersBeyondTheRatePerAddressAre429) {
  ASSERT_NO_FATAL_FAILURE(start("offers-per-second=2"));
  // A burst of 4 (the watcher took one, and a token comes back every 0.5 s
  // however slow this machine is): the next few are read, then 429.
  HttpResponse r;
  unsigned read = 0;
  for (int i = 0; i < 10 && r.status != 429; ++i) {
    r = http_request("POST", url(), "application/sdp", "x");
    read += r.status == 400;
  }
  EXPECT_EQ(r.status, 429);
  EXPECT_GE(read, 2u);
  EXPECT_LE(read, 6u);
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_TRUE(wait_until([&] { return http_request("POST", url(), "application/sdp", "x").status == 400; }, 3000ms));
}

// Offers that never connect hold a place each, up to max-pending-viewers;
// session ids are 128 random bits.
TEST_F(Abuse, PendingViewersAreCapped) {
  ASSERT_NO_FATAL_FAILURE(start("max-pending-viewers=3"));
  const std::string offer = make_offer({});
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = http_request("POST", url(), "application/sdp", offer);
    ASSERT_EQ(r.status, 201);
    std::smatch m;
    const std::string location = r.header("location");
    ASSERT_TRUE(std::regex_match(location, m, std::regex("/whep/([0-9a-f]{32})"))) << location;
    ids.insert(m[1]);
  }
  EXPECT_EQ(ids.size(), 3u);
  // Not GLib's UUIDs (GRand, not for secrets): version 4 has '4' at hex
  // digit 12 and one of 8, 9, a, b at 16. 128 random bits match that by
  // chance once in 64; three ids at once, once in 262,144.
  unsigned like_uuid = 0;
  for (const auto &id : ids) like_uuid += id[12] == '4' && std::string("89ab").find(id[16]) != std::string::npos;
  EXPECT_LT(like_uuid, 3u);
  HttpResponse r = http_request("POST", url(), "application/sdp", offer);
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_NE(r.body.find("max-pending-viewers"), std::string::npos) << r.body;
}

// Offers the ICE-lite port cannot serve cost a webrtcbin (threads) each:
// a storm of them is held to max-pending-webrtcbin, not a thread per POST.
TEST_F(Abuse, AStormOfWebrtcbinOffersIsHeldToItsCap) {
  ASSERT_NO_FATAL_FAILURE(start("max-pending-webrtcbin=2 offers-per-second=0"));
  std::string offer = make_offer({});
  // Without rtcp-mux the shared port cannot serve it.
  offer = std::regex_replace(offer, std::regex("a=rtcp-mux\r\n"), "");
  const unsigned threads_before = threads();
  std::map<int, unsigned> statuses;
  std::vector<std::thread> storm;
  std::mutex mutex;
  for (int t = 0; t < 4; ++t)
    storm.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        int status = http_request("POST", url(), "application/sdp", offer).status;
        std::lock_guard<std::mutex> lock(mutex);
        ++statuses[status];
      }
    });
  for (auto &t : storm) t.join();
  std::printf("[ storm    ] 60 offers: %u answered, %u refused (503); threads %u -> %u\n", statuses[201],
              statuses[503], threads_before, threads());
  EXPECT_EQ(statuses[201], 2u);
  EXPECT_EQ(statuses[503], 58u);
  // Two webrtcbins (about 8 threads each) and the answer workers, not 60.
  EXPECT_LT(threads(), threads_before + 40);
}

// viewer-token: only viewers with it watch, and a DELETE needs it too.
TEST(ViewerToken, IsRequiredForOffersAndDeletes) {
  Broadcast::Options options;
  options.extra_sink_props = "viewer-token=s3cret";
  Broadcast broadcast(options);
  ASSERT_TRUE(broadcast.start()) << broadcast.last_error();
  ASSERT_TRUE(broadcast.wait_media_flowing());
  const std::string offer = make_offer({});
  HttpResponse none = http_request("POST", broadcast.url(), "application/sdp", offer);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("www-authenticate"), "Bearer");
  EXPECT_EQ(http_request("POST", broadcast.url(), "application/sdp", offer, {{"Authorization", "Bearer wrong"}}).status,
            401);
  HttpResponse ok =
      http_request("POST", broadcast.url(), "application/sdp", offer, {{"Authorization", "Bearer s3cret"}});
  ASSERT_EQ(ok.status, 201);
  const std::string session = broadcast.url(ok.header("location"));
  EXPECT_EQ(http_request("POST", session + "/layer", "application/json", "{}").status, 401);
  EXPECT_EQ(http_request("DELETE", session).status, 401);
  EXPECT_EQ(http_request("DELETE", session, "", "", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(broadcast.viewer_count(), 0u);
}

// The authorize signal: the application's own check of each POST and
// DELETE; a session ends only with the credentials it started with.
TEST_F(Abuse, TheAuthorizeSignalDecidesAndASessionEndsOnlyWithItsOwnCredentials) {
  ASSERT_NO_FATAL_FAILURE(start(""));
  struct Seen {
    std::mutex mutex;
    std::vector<std::string> calls;
  } seen;
  g_signal_connect(broadcast_->sink(), "authorize",
                   G_CALLBACK(+[](GstElement *, const gchar *method, const gchar *path, const gchar *authorization,
                                  const gchar *remote, Seen *s) -> gboolean {
                     std::lock_guard<std::mutex> lock(s->mutex);
                     s->calls.push_back(std::string(method) + " " + path + " " + authorization + " " + remote);
                     const std::string a = authorization;
                     return a == "Bearer alice" || a == "Bearer bob";
                   }),
                   &seen);
  const std::string offer = make_offer({});
  EXPECT_EQ(http_request("POST", url(), "application/sdp", offer).status, 401);
  EXPECT_EQ(http_request("POST", url(), "application/sdp", offer, {{"Authorization", "Bearer eve"}}).status, 403);
  HttpResponse alice = http_request("POST", url(), "application/sdp", offer, {{"Authorization", "Bearer alice"}});
  ASSERT_EQ(alice.status, 201);
  const std::string session = url(alice.header("location"));
  // Nor is its layer pinned but by them.
  EXPECT_EQ(http_request("POST", session + "/layer", "application/json", "{}", {{"Authorization", "Bearer bob"}}).status,
            403);
  EXPECT_EQ(
      http_request("POST", session + "/layer", "application/json", "{}", {{"Authorization", "Bearer alice"}}).status,
      204);
  EXPECT_EQ(http_request("DELETE", session, "", "", {{"Authorization", "Bearer bob"}}).status, 403);
  EXPECT_EQ(http_request("DELETE", session, "", "", {{"Authorization", "Bearer alice"}}).status, 200);
  std::lock_guard<std::mutex> lock(seen.mutex);
  ASSERT_EQ(seen.calls.size(), 7u);
  EXPECT_EQ(seen.calls[2], "POST /whep Bearer alice 127.0.0.1");
  EXPECT_EQ(seen.calls[4], "POST " + alice.header("location") + "/layer Bearer alice 127.0.0.1");
  EXPECT_EQ(seen.calls[6], "DELETE " + alice.header("location") + " Bearer alice 127.0.0.1");
  g_signal_handlers_disconnect_by_data(broadcast_->sink(), &seen);
}
