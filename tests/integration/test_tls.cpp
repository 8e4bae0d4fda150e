// TLS on the signalling: a node serving its page and WHEP over HTTPS, relays
// that verify their upstream's certificate (tls-ca for a private CA), a
// WHIP push to an HTTPS ingest, and files that cannot be used. The CA and
// the server's certificate (for IP 127.0.0.1) are made with the openssl CLI
// for each run, so nothing here expires.
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <libsoup/soup.h>

#include <memory>
#include <mutex>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

std::string join_path(const std::string &dir, const char *name) {
  gchar *p = g_build_filename(dir.c_str(), name, nullptr);
  std::string out = p;
  g_free(p);
  return out;
}

bool run(const std::string &dir, std::vector<std::string> args, std::string *output) {
  std::vector<gchar *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  gchar *out = nullptr;
  gint status = 0;
  GError *error = nullptr;
  bool ok = g_spawn_sync(dir.c_str(), argv.data(), nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, &out,
                         &status, &error) &&
            g_spawn_check_wait_status(status, nullptr);
  *output += args[0] + " " + args[1] + ": " + (error ? error->message : "") + (out ? out : "") + "\n";
  g_clear_error(&error);
  g_free(out);
  return ok;
}

// What a test node needs: a CA, a certificate it signed for 127.0.0.1 with
// its key, and a second key that belongs to nothing.
struct TestPki {
  std::string dir, ca, certificate, key, other_key, error;

  bool make() {
    gchar *tmp = g_dir_make_tmp("wb-tls-XXXXXX", nullptr);
    if (!tmp) return false;
    dir = tmp;
    g_free(tmp);
    ca = join_path(dir, "ca.pem");
    certificate = join_path(dir, "server.pem");
    key = join_path(dir, "server.key");
    other_key = join_path(dir, "other.key");
    const std::string ext = join_path(dir, "server.ext");
    g_file_set_contents(ext.c_str(),
                        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n", -1,
                        nullptr);
    const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"};
    auto with = [&](std::vector<std::string> head, std::vector<std::string> tail) {
      head.insert(head.end(), ec.begin(), ec.end());
      head.insert(head.end(), tail.begin(), tail.end());
      return head;
    };
    return run(dir, with({"openssl", "req", "-x509"},
                         {"-keyout", "ca.key", "-out", ca, "-days", "2", "-subj", "/CN=webrtcbroadcast test CA",
                          "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                          "keyUsage=critical,keyCertSign,cRLSign"}),
               &error) &&
           run(dir, with({"openssl", "req"}, {"-keyout", key, "-out", "server.csr", "-subj", "/CN=127.0.0.1"}),
               &error) &&
           run(dir,
               {"openssl", "x509", "-req", "-in", "server.csr", "-CA", ca, "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", certificate, "-extfile", ext},
               &error) &&
           run(dir, with({"openssl", "req"}, {"-keyout", other_key, "-out", "other.csr", "-subj", "/CN=other"}),
               &error);
  }

  ~TestPki() {
    if (dir.empty()) return;
    GDir *d = g_dir_open(dir.c_str(), 0, nullptr);
    for (const gchar *name; d && (name = g_dir_read_name(d));) g_remove(join_path(dir, name).c_str());
    if (d) g_dir_close(d);
    g_rmdir(dir.c_str());
  }
};

// Warnings of one debug category, as they are logged.
class LogCapture {
 public:
  explicit LogCapture(const char *category) : category_(category) {
    gst_debug_set_threshold_for_name(category, GST_LEVEL_WARNING);
    gst_debug_add_log_function(on_log, this, nullptr);
  }
  ~LogCapture() {
    gst_debug_remove_log_function_by_data(this);
    gst_debug_unset_threshold_for_name(category_.c_str());
  }
  bool contains(const std::string &text) {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_.find(text) != std::string::npos;
  }
  std::string lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 private:
  static void on_log(GstDebugCategory *category, GstDebugLevel level, const gchar *, const gchar *, gint, GObject *,
                     GstDebugMessage *message, gpointer data) {
    auto *self = static_cast<LogCapture *>(data);
    if (level > GST_LEVEL_WARNING || self->category_ != gst_debug_category_get_name(category)) return;
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->lines_ += std::string(gst_debug_message_get(message)) + "\n";
  }
  std::string category_;
  std::mutex mutex_;
  std::string lines_;
};

std::string root_launch(unsigned port, const std::string &sink_props) {
  return "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
         "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=500 ! bs.video "
         "audiotestsrc is-live=true ! opusenc ! bs.audio "
         "broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" +
         std::to_string(port) + " " + sink_props;
}

std::string relay_out(unsigned port, const std::string &sink_props = "") {
  return " broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" + std::to_string(port) + " " +
         sink_props + " r.video ! queue ! bs.video r.audio ! queue ! bs.audio";
}

std::string state_of(GstElement *relaysrc) {
  gchar *state = nullptr;
  g_object_get(relaysrc, "upstream-state", &state, nullptr);
  std::string out = state ? state : "";
  g_free(state);
  return out;
}

class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TestPki();
    if (!pki_->make()) ADD_FAILURE() << "could not make the test CA:\n" << pki_->error;
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  static std::string server_props() {
    return "tls-certificate=" + pki_->certificate + " tls-key=" + pki_->key;
  }
  // A root serving HTTPS with the test certificate.
  std::unique_ptr<Broadcast> start_root(unsigned port) {
    auto root = std::make_unique<Broadcast>(root_launch(port, server_props()), port, pki_->ca);
    EXPECT_TRUE(root->start()) << root->last_error();
    EXPECT_TRUE(root->wait_media_flowing());
    return root;
  }
  static TestPki *pki_;
};

TestPki *Tls::pki_ = nullptr;

TEST_F(Tls, AViewerDecodesOverHttpsAndNothingIsServedWithoutIt) {
  unsigned port = free_tcp_port();
  auto root = start_root(port);
  EXPECT_EQ(root->url(), "https://127.0.0.1:" + std::to_string(port) + "/whep");

  HttpResponse page = http_request("GET", root->url("/"), "", "", {}, true, pki_->ca);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<video"), std::string::npos);
  // Plain HTTP on the same port, and HTTPS without trusting the test CA:
  // no answer at all.
  EXPECT_EQ(http_request("GET", "http://127.0.0.1:" + std::to_string(port) + "/").status, 0);
  EXPECT_EQ(http_request("GET", root->url("/")).status, 0);

  WhepViewer::Options options;
  options.tls_ca = pki_->ca;
  WhepViewer viewer(options);
  ASSERT_EQ(viewer.connect(root->url()), 201) << viewer.error();
  EXPECT_EQ(viewer.session_url().rfind("https://127.0.0.1:", 0), 0u) << viewer.session_url();
  EXPECT_TRUE(wait_until([&] { return viewer.video_frames() >= 30 && viewer.audio_frames() >= 30; }, 10000ms))
      << viewer.video_frames() << " video, " << viewer.audio_frames() << " audio frames";
  viewer.disconnect();  // DELETE over HTTPS
  EXPECT_TRUE(wait_until([&] { return root->viewer_count() == 0; }, 3000ms));
}

TEST_F(Tls, ARelayVerifiesItsUpstreamAgainstTlsCaAndRefusesItWithout) {
  unsigned root_port = free_tcp_port(), trusting_port = free_tcp_port(), refusing_port = free_tcp_port();
  auto root = start_root(root_port);
  LogCapture relay_log("broadcastrelay");

  // Without tls-ca the system's authorities do not know the test CA: the
  // upstream is refused before any offer reaches it.
  Broadcast refusing("relaysrc name=r ice-address=127.0.0.1 location=" + root->url() + relay_out(refusing_port),
                     refusing_port);
  ASSERT_TRUE(refusing.start()) << refusing.last_error();
  GstElement *refusing_src = gst_bin_get_by_name(GST_BIN(GST_OBJECT_PARENT(refusing.sink())), "r");
  const std::string refusal = "TLS certificate of 127.0.0.1:" + std::to_string(root_port) +
                              " refused: signed by an unknown authority (for a private CA, set tls-ca)";
  EXPECT_TRUE(wait_until([&] { return relay_log.contains(refusal); }, 5000ms)) << relay_log.lines();
  EXPECT_TRUE(wait_until([&] { return state_of(refusing_src) == "lost"; }, 1000ms)) << state_of(refusing_src);
  EXPECT_EQ(root->viewer_count(), 0u);
  EXPECT_EQ(http_request("POST", refusing.url(), "application/sdp", make_offer({})).status, 409)
      << "the refusing relay has media";

  // With it, the same upstream is pulled and decodes at the relay's viewer.
  Broadcast trusting("relaysrc name=r ice-address=127.0.0.1 tls-ca=" + pki_->ca + " location=" + root->url() +
                         relay_out(trusting_port),
                     trusting_port);
  ASSERT_TRUE(trusting.start()) << trusting.last_error();
  ASSERT_TRUE(trusting.wait_media_flowing());
  WhepViewer leaf;
  ASSERT_EQ(leaf.connect(trusting.url()), 201) << leaf.error();
  EXPECT_TRUE(wait_until([&] { return leaf.video_frames() >= 30 && leaf.audio_frames() >= 30; }, 10000ms))
      << leaf.video_frames() << " video, " << leaf.audio_frames() << " audio frames";
  // The refusing relay still has nothing: it keeps retrying with backoff.
  EXPECT_NE(state_of(refusing_src), "live");
  EXPECT_EQ(root->viewer_count(), 1u);
  leaf.disconnect();
  gst_object_unref(refusing_src);
}

// A full root learns its relay children's load from their /status: a child
// serving HTTPS with a certificate of a private CA is reachable when the
// root's tls-ca vouches for it, and new viewers are sent there.
TEST_F(Tls, AFullRootSendsViewersToAnHttpsRelayChildThatItsTlsCaVouchesFor) {
  unsigned root_port = free_tcp_port(), child_port = free_tcp_port();
  Broadcast root(root_launch(root_port, server_props() + " max-viewers=1 tls-ca=" + pki_->ca), root_port, pki_->ca);
  ASSERT_TRUE(root.start()) << root.last_error();
  ASSERT_TRUE(root.wait_media_flowing());
  const std::string child_url = "https://127.0.0.1:" + std::to_string(child_port) + "/whep";
  Broadcast child("relaysrc name=r ice-address=127.0.0.1 tls-ca=" + pki_->ca + " location=" + root.url() +
                      " advertise-url=" + child_url + relay_out(child_port, server_props()),
                  child_port, pki_->ca);
  ASSERT_TRUE(child.start()) << child.last_error();
  ASSERT_TRUE(child.wait_media_flowing());

  WhepViewer::Options options;
  options.tls_ca = pki_->ca;
  WhepViewer first(options);
  ASSERT_EQ(first.connect(root.url()), 201) << first.error();
  const std::string offer = make_offer({});
  HttpResponse full;
  EXPECT_TRUE(wait_until([&] {
    full = http_request("POST", root.url(), "application/sdp", offer, {}, false, pki_->ca);
    return full.status == 307;
  }, 5000ms)) << "got " << full.status << ": " << full.body;
  EXPECT_EQ(full.header("location"), child_url);

  WhepViewer second(options);
  ASSERT_EQ(second.connect(root.url()), 201) << second.error();
  EXPECT_EQ(second.answered_by(), child_url);
  EXPECT_TRUE(wait_until([&] { return second.video_frames() >= 30 && second.audio_frames() >= 30; }, 10000ms))
      << second.video_frames() << " video, " << second.audio_frames() << " audio frames";
  second.disconnect();
  first.disconnect();
}

TEST_F(Tls, APushReachesAnHttpsIngestThatItsTlsCaVouchesFor) {
  unsigned whip_port = free_tcp_port(), out_port = free_tcp_port(), root_port = free_tcp_port();
  const std::string whip = "https://127.0.0.1:" + std::to_string(whip_port) + "/whip";
  Broadcast ingest("relaysrc name=r ice-address=127.0.0.1 whip-address=127.0.0.1 whip-port=" +
                       std::to_string(whip_port) + " " + server_props() + relay_out(out_port),
                   out_port);
  ASSERT_TRUE(ingest.start()) << ingest.last_error();
  EXPECT_EQ(http_request("OPTIONS", whip, "", "", {}, true, pki_->ca).status, 204);

  Broadcast pusher(root_launch(root_port, "push-url=" + whip + " tls-ca=" + pki_->ca), root_port);
  ASSERT_TRUE(pusher.start()) << pusher.last_error();
  ASSERT_TRUE(ingest.wait_media_flowing());
  WhepViewer viewer;
  ASSERT_EQ(viewer.connect(ingest.url()), 201) << viewer.error();
  EXPECT_TRUE(wait_until([&] { return viewer.video_frames() >= 30 && viewer.audio_frames() >= 30; }, 10000ms))
      << viewer.video_frames() << " video, " << viewer.audio_frames() << " audio frames";
  viewer.disconnect();
}

// Clients that refuse our certificate end the handshake: libsoup 3.2 never
// frees such a connection's first message, whose deadline then found no
// socket (a crash), and which held its place among max-http-connections.
TEST_F(Tls, RefusedHandshakesHoldNoConnectionAndNoDescriptor) {
  unsigned port = free_tcp_port();
  Broadcast node(root_launch(port, server_props() + " max-http-connections=4 http-request-timeout=1"), port,
                 pki_->ca);
  ASSERT_TRUE(node.start()) << node.last_error();
  // One good handshake first: the TLS backend opens what it keeps for the
  // process's life (not a connection's) on its first use. Under ASan that
  // first handshake can outlast the 1 s request timeout set here (CI run of
  // 2f53b4d), so it may take a few tries.
  ASSERT_TRUE(wait_until([&] { return http_request("GET", node.url("/"), "", "", {}, true, pki_->ca).status == 200; },
                         15000ms))
      << "no good HTTPS request got through";
  const unsigned before = open_descriptors();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(http_request("GET", node.url("/")).status, 0);
  // Past every deadline, the four connection places are free again: were
  // the 20 refused ones still held, no request could get through at all.
  // Five must. Not "in a row": under ASan on a loaded machine one good
  // handshake now and then outlasts the 1 s request timeout itself (CI run
  // of 3646dec), which says nothing about the places.
  int good = 0;
  EXPECT_TRUE(wait_until([&] {
    good += http_request("GET", node.url("/"), "", "", {}, true, pki_->ca).status == 200;
    return good >= 5;
  }, 30000ms)) << good << " of 5 good requests got through";
  EXPECT_TRUE(wait_until([&] { return open_descriptors() <= before + 2; }, 3000ms))
      << before << " descriptors before, " << open_descriptors() << " after";
}

// ...nor its memory: each such connection, its first message and its TLS
// session are freed (libsoup 3.2 kept about 31 kB of them per refused
// handshake for the node's life: a scanner's cost to the node, unbounded).
TEST_F(Tls, RefusedHandshakesGiveTheirMemoryBack) {
  unsigned port = free_tcp_port();
  Broadcast node(root_launch(port, server_props()), port, pki_->ca);
  ASSERT_TRUE(node.start()) << node.last_error();
  ASSERT_EQ(http_request("GET", node.url("/"), "", "", {}, true, pki_->ca).status, 200);
  InstanceCount<soup_server_message_get_type> messages;
  for (int i = 0; i < 50; ++i) ASSERT_EQ(http_request("GET", node.url("/")).status, 0);
  EXPECT_TRUE(wait_until([&] { return messages.alive() <= 0; }, 5000ms))
      << messages.alive() << " of 50 refused connections' messages are still alive";
#ifndef __SANITIZE_ADDRESS__  // ASan keeps freed memory in its quarantine: RSS tells nothing there
  // The allocator settles on the first few hundred; what is kept per
  // handshake shows in the next 500.
  for (int i = 0; i < 200; ++i) ASSERT_EQ(http_request("GET", node.url("/")).status, 0);
  const long before = rss_kb();
  for (int i = 0; i < 500; ++i) ASSERT_EQ(http_request("GET", node.url("/")).status, 0);
  const long grown = rss_kb() - before;
  std::printf("[ rss      ] %ld kB before, grew by %ld kB after 500 refused handshakes\n", before, grown);
  EXPECT_LT(grown, 4 * 1024);
#endif
}

TEST_F(Tls, FilesThatCannotBeUsedFailTheStateChangeAndAreNamed) {
  const std::string missing = pki_->dir + "/missing.pem";
  struct Case {
    std::string props, named;
  } cases[] = {
      {"tls-certificate=" + missing + " tls-key=" + pki_->key, "tls-certificate " + missing},
      {"tls-certificate=" + pki_->certificate + " tls-key=" + missing, "tls-key " + missing},
      {"tls-certificate=" + pki_->certificate + " tls-key=" + pki_->other_key,
       "tls-key " + pki_->other_key + " is not the private key of tls-certificate " + pki_->certificate},
      {"tls-certificate=" + pki_->certificate, "needs both tls-certificate and tls-key"},
      {"tls-certificate=" + pki_->key + " tls-key=" + pki_->key, "tls-certificate " + pki_->key},
      {"tls-ca=" + missing, "tls-ca " + missing},
  };
  for (const auto &c : cases) {
    unsigned port = free_tcp_port();
    Broadcast node("videotestsrc is-live=true ! x264enc tune=zerolatency ! broadcastsink name=bs "
                   "address=127.0.0.1 port=" + std::to_string(port) + " " + c.props,
                   port);
    EXPECT_FALSE(node.start()) << c.props;
    EXPECT_NE(node.last_error().find(c.named), std::string::npos) << c.props << ": " << node.last_error();
  }
  // relaysrc: the ingest's certificate, and the puller's CA.
  for (const std::string &props : {"whip-port=" + std::to_string(free_tcp_port()) + " tls-certificate=" + missing +
                                       " tls-key=" + pki_->key,
                                   "location=https://127.0.0.1:1/whep tls-ca=" + missing}) {
    unsigned port = free_tcp_port();
    Broadcast node("relaysrc name=r " + props + relay_out(port), port);
    EXPECT_FALSE(node.start()) << props;
    EXPECT_NE(node.last_error().find(missing), std::string::npos) << props << ": " << node.last_error();
  }
}

}  // namespace
