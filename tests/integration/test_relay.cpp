// Relay trees as separate processes on loopback: a root, relays pulling
// from it (relaysrc ! broadcastsink), WHIP ingest and push, redirects, and
// an upstream restart under the viewers' feet.
#include <gtest/gtest.h>
#include <gst/sdp/sdp.h>
#include <libsoup/soup.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

std::string whep(unsigned port) { return "http://127.0.0.1:" + std::to_string(port) + "/whep"; }

enum class Media { Both, VideoOnly, AudioOnly };

std::string root_launch(unsigned port, const std::string &sink_props = "", Media media = Media::Both) {
  std::string launch;
  if (media != Media::AudioOnly)
    launch += "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
              "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=3000 bitrate=500 ! bs.video ";
  if (media != Media::VideoOnly) launch += "audiotestsrc is-live=true ! opusenc ! bs.audio ";
  return launch + "broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" + std::to_string(port) +
         " " + sink_props;
}

std::string relay_out(unsigned port, const std::string &sink_props = "") {
  return " broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" + std::to_string(port) + " " +
         sink_props + " r.video ! queue ! bs.video r.audio ! queue ! bs.audio";
}

std::string relay_launch(const std::string &from, unsigned port, const std::string &props = "") {
  return "relaysrc name=r ice-address=127.0.0.1 location=" + from + " advertise-url=" + whep(port) + " " +
         props + relay_out(port);
}

// Offers get 409 until the node has media; a viewer per attempt.
std::unique_ptr<WhepViewer> watch(const std::string &url, std::chrono::milliseconds timeout = 15000ms) {
  std::unique_ptr<WhepViewer> viewer;
  wait_until([&] {
    viewer = std::make_unique<WhepViewer>();
    return viewer->connect(url) == 201;
  }, timeout);
  return viewer && !viewer->session_url().empty() ? std::move(viewer) : nullptr;
}

// True once no video frame was decoded between two polls.
bool wait_video_stalled(const WhepViewer &v) {
  unsigned frames = v.video_frames();
  return wait_until([&] {
    unsigned now = v.video_frames();
    bool still = now == frames;
    frames = now;
    return still;
  }, 3000ms);
}

bool decodes_both(const WhepViewer &v, unsigned frames) {
  return v.video_frames() >= frames && v.audio_frames() >= frames;
}

// The kind of each m-line of an answer that will carry media (neither
// rejected nor inactive), in order.
std::vector<std::string> media_answered(const std::string &sdp_text) {
  std::vector<std::string> kinds;
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new(&sdp);
  gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(sdp_text.data()), sdp_text.size(), sdp);
  for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
    const GstSDPMedia *m = gst_sdp_message_get_media(sdp, i);
    if (gst_sdp_media_get_port(m) != 0 && !gst_sdp_media_get_attribute_val(m, "inactive"))
      kinds.push_back(gst_sdp_media_get_media(m) ? gst_sdp_media_get_media(m) : "");
  }
  gst_sdp_message_free(sdp);
  return kinds;
}

// A WHEP endpoint on loopback that answers every offer 201 with SDP no
// WebRTC peer can use, counting what it is sent. Its own thread and context.
class UnusableUpstream {
 public:
  UnusableUpstream() {
    context_ = g_main_context_new();
    loop_ = g_main_loop_new(context_, FALSE);
    g_main_context_push_thread_default(context_);
    server_ = soup_server_new(nullptr, nullptr);
    soup_server_add_handler(server_, "/whep", &UnusableUpstream::handle, this, nullptr);
    GError *error = nullptr;
    port_ = free_tcp_port();
    listening_ = soup_server_listen_local(server_, port_, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
    if (error) g_error_free(error);
    g_main_context_pop_thread_default(context_);
    thread_ = std::thread([this] {
      g_main_context_push_thread_default(context_);
      g_main_loop_run(loop_);
      g_main_context_pop_thread_default(context_);
    });
  }
  ~UnusableUpstream() {
    g_main_loop_quit(loop_);
    thread_.join();
    g_object_unref(server_);
    g_main_loop_unref(loop_);
    g_main_context_unref(context_);
  }
  bool listening() const { return listening_; }
  std::string url() const { return whep(port_); }
  unsigned posts() const { return posts_.load(); }
  unsigned deletes() const { return deletes_.load(); }
  std::string first_offer() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_offer_;
  }

 private:
  static void handle(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer data) {
    auto *self = static_cast<UnusableUpstream *>(data);
    const char *method = soup_server_message_get_method(msg);
    if (g_str_equal(method, "POST")) {
      {
        std::lock_guard<std::mutex> lock(self->mutex_);
        if (self->first_offer_.empty()) {
          GBytes *body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
          gsize size = 0;
          const char *data = static_cast<const char *>(g_bytes_get_data(body, &size));
          self->first_offer_.assign(data ? data : "", size);
          g_bytes_unref(body);
        }
      }
      unsigned n = ++self->posts_;
      // Parses as SDP, but its section has no ICE credentials nor a DTLS
      // fingerprint: webrtcbin refuses it.
      static const char answer[] =
          "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
          "m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
          "a=rtpmap:102 H264/90000\r\n";
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location",
                                   ("/whep/" + std::to_string(n)).c_str());
      soup_server_message_set_response(msg, "application/sdp", SOUP_MEMORY_STATIC, answer, sizeof answer - 1);
      soup_server_message_set_status(msg, 201, nullptr);
    } else if (g_str_equal(method, "DELETE") && g_str_has_prefix(path, "/whep/")) {
      ++self->deletes_;
      soup_server_message_set_status(msg, 200, nullptr);
    } else if (g_str_equal(method, "OPTIONS")) {
      soup_server_message_set_status(msg, 204, nullptr);
    } else {
      soup_server_message_set_status(msg, 404, nullptr);
    }
  }

  mutable std::mutex mutex_;
  std::string first_offer_;
  GMainContext *context_;
  GMainLoop *loop_;
  SoupServer *server_;
  unsigned port_ = 0;
  bool listening_ = false;
  std::thread thread_;
  std::atomic<unsigned> posts_{0}, deletes_{0};
};

}  // namespace

TEST(Relay, ChainRootRelayRelayViewersDecodeAndRelaysNeverDecode) {
  unsigned root_port = free_tcp_port(), r1_port = free_tcp_port(), r2_port = free_tcp_port();
  NodeProcess root(root_launch(root_port));
  ASSERT_TRUE(root.wait_ready()) << root.output();
  NodeProcess relay1(relay_launch(whep(root_port), r1_port));
  ASSERT_TRUE(relay1.wait_ready()) << relay1.output();
  NodeProcess relay2(relay_launch(whep(r1_port), r2_port));
  ASSERT_TRUE(relay2.wait_ready()) << relay2.output();

  auto a = watch(whep(r2_port));
  ASSERT_TRUE(a) << "leaf viewer never got 201 from relay 2";
  auto b = watch(whep(r2_port));
  ASSERT_TRUE(b);
  EXPECT_TRUE(wait_until([&] { return decodes_both(*a, 30) && decodes_both(*b, 30); }, 10000ms))
      << "video " << a->video_frames() << "/" << b->video_frames() << " audio " << a->audio_frames() << "/"
      << b->audio_frames();
  EXPECT_EQ(a->video_width(), 320u);

  // The root's GOP is 100 s: a late joiner at the leaf only sees a picture
  // within seconds if its keyframe request travels up both hops (as RTCP
  // PLI). The deadline leaves room for three ASan processes on a busy box.
  auto late = watch(whep(r2_port));
  ASSERT_TRUE(late);
  EXPECT_TRUE(wait_until([&] { return late->video_frames() > 0; }, 8000ms))
      << "a late joiner at the leaf waited for the root's natural keyframe (audio frames "
      << late->audio_frames() << ")";
  std::printf("late joiner at the leaf: first frame %.0f ms after its POST\n", late->first_video_frame_ms());

  for (NodeProcess *relay : {&relay1, &relay2}) {
    auto elements = relay->elements();
    ASSERT_FALSE(elements.empty()) << relay->output();
    bool has_relaysrc = false;
    for (const auto &e : elements) {
      // webrtcbin's receive path holds RED/ULPFEC decoders (klass
      // Codec/Depayloader), which only unwrap FEC and pass RTP on.
      std::string factory = e.substr(0, e.find(':')), klass = e.substr(e.find(':') + 1);
      has_relaysrc |= factory == "relaysrc";
      bool media_codec = klass.find("Video") != std::string::npos || klass.find("Audio") != std::string::npos;
      EXPECT_FALSE(media_codec && klass.find("Decoder") != std::string::npos) << "a relay decodes: " << e;
      EXPECT_FALSE(media_codec && klass.find("Encoder") != std::string::npos) << "a relay encodes: " << e;
      EXPECT_FALSE(factory.size() > 5 && factory.compare(factory.size() - 5, 5, "depay") == 0)
          << "a relay depayloads: " << e;
    }
    EXPECT_TRUE(has_relaysrc);
  }
}

// root -> relay1 -> relay2, each its own process, and a viewer of relay2
// decoding both media.
struct LeafOfChain {
  unsigned root_port = free_tcp_port(), r1_port = free_tcp_port(), r2_port = free_tcp_port();
  std::unique_ptr<NodeProcess> root, relay1, relay2;
  std::unique_ptr<WhepViewer> viewer;

  bool start() {
    root = std::make_unique<NodeProcess>(root_launch(root_port));
    if (!root->wait_ready()) return false;
    relay1 = std::make_unique<NodeProcess>(relay_launch(whep(root_port), r1_port));
    relay2 = std::make_unique<NodeProcess>(relay_launch(whep(r1_port), r2_port));
    if (!relay1->wait_ready() || !relay2->wait_ready()) return false;
    viewer = watch(whep(r2_port));
    return viewer && wait_until([&] { return decodes_both(*viewer, 30); }, 10000ms);
  }
};

TEST(Relay, LeafViewersResumeWithin3sOfRootRestartWithoutNewSessions) {
  LeafOfChain chain;
  ASSERT_TRUE(chain.start());
  unsigned root_port = chain.root_port;
  auto &root = chain.root;
  auto &viewer = chain.viewer;
  const std::string session = viewer->session_url();

  root->kill();
  // The outage must be visible before it can be said to end.
  ASSERT_TRUE(wait_video_stalled(*viewer)) << "video kept flowing with the root killed";
  std::this_thread::sleep_for(300ms);  // frames counted while the pipe drained
  unsigned stalled_at = viewer->video_frames();

  root = std::make_unique<NodeProcess>(root_launch(root_port));
  ASSERT_TRUE(root->wait_ready()) << root->output();
  auto back = std::chrono::steady_clock::now();
  bool resumed = wait_until([&] { return viewer->video_frames() > stalled_at + 5; }, 3000ms);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - back).count();
  EXPECT_TRUE(resumed) << "leaf viewer did not resume within 3 s of the root coming back";
  std::printf("leaf video resumed %.0f ms after the root came back\n", ms);
  unsigned audio = viewer->audio_frames();
  EXPECT_TRUE(wait_until([&] { return viewer->audio_frames() > audio + 10; }, 3000ms)) << "audio did not resume";
  // Same session all along: the relay still knows it.
  EXPECT_EQ(viewer->session_url(), session);
  EXPECT_EQ(http_request("DELETE", session).status, 200);
}

// A root with one medium: each relay offers both and is answered one, then
// answers its own viewers (who offer both) with that one alone.
void chain_of_one_medium_decodes_at_the_leaf(Media media) {
  const bool video = media == Media::VideoOnly;
  unsigned root_port = free_tcp_port(), r1_port = free_tcp_port(), r2_port = free_tcp_port();
  NodeProcess root(root_launch(root_port, "", media));
  ASSERT_TRUE(root.wait_ready()) << root.output();
  NodeProcess relay1(relay_launch(whep(root_port), r1_port));
  ASSERT_TRUE(relay1.wait_ready()) << relay1.output();
  NodeProcess relay2(relay_launch(whep(r1_port), r2_port));
  ASSERT_TRUE(relay2.wait_ready()) << relay2.output();

  auto leaf = watch(whep(r2_port));
  ASSERT_TRUE(leaf) << "leaf viewer never got 201 from relay 2";
  EXPECT_EQ(leaf->error(), "") << leaf->answer();
  EXPECT_EQ(media_answered(leaf->answer()), std::vector<std::string>{video ? "video" : "audio"}) << leaf->answer();
  if (video) {
    EXPECT_TRUE(wait_until([&] { return leaf->video_frames() >= 30; }, 10000ms)) << leaf->video_frames();
    EXPECT_EQ(leaf->video_width(), 320u);
  } else {
    EXPECT_TRUE(wait_until([&] { return leaf->audio_frames() >= 30; }, 10000ms)) << leaf->audio_frames();
  }
}

TEST(Relay, VideoOnlyRootDecodesAtTheLeafOfTwoRelays) { chain_of_one_medium_decodes_at_the_leaf(Media::VideoOnly); }

TEST(Relay, AudioOnlyRootDecodesAtTheLeafOfTwoRelays) { chain_of_one_medium_decodes_at_the_leaf(Media::AudioOnly); }

// An upstream that answers, but with SDP the relay cannot use, is not a
// returning upstream: the relay's attempts follow the backoff (1, 2, 4, 8,
// 16 s: at most 5 in the 25 s from the first) instead of one a second.
TEST(Relay, UpstreamAnsweringUnusableSdpIsRetriedWithBackoff) {
  UnusableUpstream upstream;
  ASSERT_TRUE(upstream.listening());
  NodeProcess relay(relay_launch(upstream.url(), free_tcp_port()));
  ASSERT_TRUE(relay.wait_ready()) << relay.output();
  ASSERT_TRUE(wait_until([&] { return upstream.posts() > 0; }, 10000ms)) << "the relay never offered";
  // Its offer as browsers write them: every section on a port, none
  // bundle-only, which other stacks' WHEP servers take for rejected.
  const std::string offer = upstream.first_offer();
  EXPECT_NE(offer.find("m=video 9 "), std::string::npos) << offer;
  EXPECT_NE(offer.find("m=audio 9 "), std::string::npos) << offer;
  EXPECT_EQ(offer.find("a=bundle-only"), std::string::npos) << offer;
  std::this_thread::sleep_for(25s);  // the window whose attempts are counted
  unsigned posts = upstream.posts();
  EXPECT_GE(posts, 2u) << "the relay stopped trying";
  EXPECT_LE(posts, 5u) << "the relay did not back off";
  // Each refused session is ended upstream rather than left to time out.
  EXPECT_TRUE(wait_until([&] { return upstream.deletes() >= posts; }, 5000ms))
      << upstream.deletes() << " DELETEs for " << posts << " sessions";
}

// Reconnection attempts back off (1 s doubling), yet a root that comes
// back after a long outage is noticed within a second; the relay in the
// middle, alive but silent meanwhile, keeps its viewers' session.
TEST(Relay, LeafViewersResumeWithin3sOfRootComingBackAfterSixSeconds) {
  LeafOfChain chain;
  ASSERT_TRUE(chain.start());
  unsigned root_port = chain.root_port;
  auto &root = chain.root;
  auto &viewer = chain.viewer;

  root.reset();  // killed
  auto down = std::chrono::steady_clock::now();
  // Wait out the outage while checking that nothing flows meanwhile.
  unsigned frames = viewer->video_frames();
  EXPECT_FALSE(wait_until([&] { return viewer->video_frames() > frames + 60; }, 6000ms));
  unsigned stalled_at = viewer->video_frames();
  root = std::make_unique<NodeProcess>(root_launch(root_port));
  ASSERT_TRUE(root->wait_ready());
  auto back = std::chrono::steady_clock::now();
  bool resumed = wait_until([&] { return viewer->video_frames() > stalled_at + 5; }, 3000ms);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - back).count();
  EXPECT_TRUE(resumed) << "leaf viewer did not resume within 3 s of the root coming back";
  std::printf("root down %.1f s; leaf video resumed %.0f ms after it came back\n",
              std::chrono::duration<double>(back - down).count(), ms);
}

TEST(Relay, FullRootRedirectsThirdViewerToItsChildWith307) {
  unsigned root_port = free_tcp_port(), r1_port = free_tcp_port();
  NodeProcess root(root_launch(root_port, "max-viewers=2"));
  ASSERT_TRUE(root.wait_ready());
  NodeProcess relay(relay_launch(whep(root_port), r1_port));
  ASSERT_TRUE(relay.wait_ready());
  // The child is live once it can serve a viewer itself.
  ASSERT_TRUE(wait_until([&] { return http_request("GET", whep(r1_port) + "/status").status == 200; }, 5000ms));
  auto probe = watch(whep(r1_port));
  ASSERT_TRUE(probe) << "relay never served";
  probe->disconnect();

  auto v1 = watch(whep(root_port));
  auto v2 = watch(whep(root_port));
  ASSERT_TRUE(v1 && v2);
  EXPECT_EQ(v1->answered_by(), whep(root_port));

  std::string offer = make_offer(WhepViewer::Options{});
  HttpResponse direct;
  ASSERT_TRUE(wait_until([&] {
    direct = http_request("POST", whep(root_port), "application/sdp", offer, {}, false);
    return direct.status == 307;
  }, 5000ms)) << "got " << direct.status << ": " << direct.body;
  EXPECT_EQ(direct.header("location"), whep(r1_port));

  WhepViewer v3;
  ASSERT_EQ(v3.connect(whep(root_port)), 201) << v3.error();
  EXPECT_EQ(v3.answered_by(), whep(r1_port));
  EXPECT_TRUE(wait_until([&] { return decodes_both(v3, 30); }, 10000ms));
}

TEST(Relay, FullChildRedirectsFurtherDown) {
  unsigned root_port = free_tcp_port(), r1_port = free_tcp_port(), r2_port = free_tcp_port();
  NodeProcess root(root_launch(root_port, "max-viewers=1"));
  ASSERT_TRUE(root.wait_ready());
  NodeProcess relay1("relaysrc name=r ice-address=127.0.0.1 location=" + whep(root_port) + " advertise-url=" +
                     whep(r1_port) + relay_out(r1_port, "max-viewers=1"));
  ASSERT_TRUE(relay1.wait_ready());
  NodeProcess relay2(relay_launch(whep(r1_port), r2_port));
  ASSERT_TRUE(relay2.wait_ready());
  ASSERT_TRUE(watch(whep(r2_port))) << "relay 2 never served";

  auto v1 = watch(whep(root_port));
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->answered_by(), whep(root_port));
  auto v2 = watch(whep(r1_port));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->answered_by(), whep(r1_port));
  // Root and relay 1 are full; relay 1 has a child: root -> relay 1 -> relay 2.
  std::unique_ptr<WhepViewer> v3;
  ASSERT_TRUE(wait_until([&] {
    v3 = std::make_unique<WhepViewer>();
    return v3->connect(whep(root_port)) == 201;
  }, 5000ms)) << v3->error();
  EXPECT_EQ(v3->answered_by(), whep(r2_port));
  EXPECT_TRUE(wait_until([&] { return decodes_both(*v3, 30); }, 10000ms));
}

TEST(Relay, NodeRefusesARelayFromAboveItWith508) {
  unsigned root_port = free_tcp_port(), r1_port = free_tcp_port();
  NodeProcess root(root_launch(root_port));
  ASSERT_TRUE(root.wait_ready());
  NodeProcess relay(relay_launch(whep(root_port), r1_port, "node-id=relayone"));
  ASSERT_TRUE(relay.wait_ready());
  ASSERT_TRUE(watch(whep(r1_port)));
  std::string offer = make_offer(WhepViewer::Options{});
  // relayone pulling from its own child would close a loop.
  auto r = http_request("POST", whep(r1_port), "application/sdp", offer,
                        {{"Broadcast-Node", "relayone"}, {"Broadcast-Relay-Url", "http://127.0.0.1:1/whep"}});
  EXPECT_EQ(r.status, 508) << r.body;
  auto ok = http_request("POST", whep(r1_port), "application/sdp", offer, {{"Broadcast-Node", "someoneelse"}});
  EXPECT_EQ(ok.status, 201) << ok.body;
}

TEST(Relay, PushToIngestRelayIsWatchedThere) {
  unsigned whip_port = free_tcp_port(), out_port = free_tcp_port(), root_port = free_tcp_port();
  std::string whip = "http://127.0.0.1:" + std::to_string(whip_port) + "/whip";
  NodeProcess ingest("relaysrc name=r ice-address=127.0.0.1 whip-address=127.0.0.1 token=s3cret whip-port=" +
                     std::to_string(whip_port) + relay_out(out_port));
  ASSERT_TRUE(ingest.wait_ready()) << ingest.output();

  std::string offer = make_offer(WhepViewer::Options{});
  EXPECT_EQ(http_request("POST", whip, "application/sdp", offer).status, 401);
  EXPECT_EQ(http_request("POST", whip, "application/sdp", offer, {{"Authorization", "Bearer nope"}}).status, 401);

  NodeProcess pusher(root_launch(root_port, "push-url=" + whip + " push-token=s3cret"));
  ASSERT_TRUE(pusher.wait_ready()) << pusher.output();
  auto viewer = watch(whep(out_port));
  ASSERT_TRUE(viewer) << "nothing to watch at the ingest relay";
  EXPECT_TRUE(wait_until([&] { return decodes_both(*viewer, 30); }, 10000ms))
      << viewer->video_frames() << " video, " << viewer->audio_frames() << " audio frames";
  // One publisher at a time.
  auto second = http_request("POST", whip, "application/sdp", offer, {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(second.status, 409) << second.body;
}

// A publisher that goes away is an upstream loss: the ingest's viewers
// keep their sessions and see the next publisher.
TEST(Relay, IngestViewersSurviveAPublisherLeavingAndSeeTheNextOne) {
  unsigned whip_port = free_tcp_port(), out_port = free_tcp_port();
  std::string whip = "http://127.0.0.1:" + std::to_string(whip_port) + "/whip";
  NodeProcess ingest("relaysrc name=r ice-address=127.0.0.1 whip-address=127.0.0.1 whip-port=" +
                     std::to_string(whip_port) + relay_out(out_port));
  ASSERT_TRUE(ingest.wait_ready());
  auto publisher = std::make_unique<NodeProcess>(root_launch(free_tcp_port(), "push-url=" + whip));
  ASSERT_TRUE(publisher->wait_ready());
  auto viewer = watch(whep(out_port));
  ASSERT_TRUE(viewer);
  ASSERT_TRUE(wait_until([&] { return decodes_both(*viewer, 30); }, 10000ms));
  const std::string session = viewer->session_url();

  publisher.reset();  // killed: no DELETE
  ASSERT_TRUE(wait_video_stalled(*viewer));
  unsigned frames = viewer->video_frames();
  // The next publisher is let in once the silent one is dropped (no 409 forever).
  publisher = std::make_unique<NodeProcess>(root_launch(free_tcp_port(), "push-url=" + whip));
  ASSERT_TRUE(publisher->wait_ready());
  EXPECT_TRUE(wait_until([&] { return viewer->video_frames() > frames + 30; }, 10000ms))
      << "the ingest's viewer did not see the second publisher";
  EXPECT_EQ(http_request("DELETE", session).status, 200);
}

// The CLI's three modes in one chain: a broadcast pushing (WHIP) to an
// ingest node, and a relay pulling (WHEP) from that; a viewer of the relay.
TEST(Relay, CliBroadcastPushesToCliIngestAndCliRelayServesIt) {
  const char *cli = g_getenv("WB_TEST_CLI");
  ASSERT_TRUE(cli) << "WB_TEST_CLI is not set";
  unsigned whip_port = free_tcp_port(), ingest_port = free_tcp_port(), root_port = free_tcp_port(),
           relay_port = free_tcp_port();
  std::string whip = "http://127.0.0.1:" + std::to_string(whip_port) + "/whip";
  const std::vector<std::string> loopback = {"--address", "127.0.0.1", "--ice-address", "127.0.0.1"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), loopback.begin(), loopback.end());
    return args;
  };
  NodeProcess ingest(with({cli, "ingest", "--whip-port", std::to_string(whip_port), "--token", "t0k",
                           "--port", std::to_string(ingest_port)}));
  NodeProcess root(with({cli, "--port", std::to_string(root_port), "--push", whip, "--push-token", "t0k",
                         "--sender-report-time", "send"}));
  NodeProcess relay(with({cli, "relay", "--from", whep(ingest_port), "--port", std::to_string(relay_port)}));
  auto viewer = watch(whep(relay_port), 20000ms);
  ASSERT_TRUE(viewer) << "ingest: " << ingest.output() << "\nroot: " << root.output() << "\nrelay: " << relay.output();
  EXPECT_TRUE(wait_until([&] { return decodes_both(*viewer, 30); }, 10000ms))
      << viewer->video_frames() << " video frames (" << viewer->video_packets() << " packets), "
      << viewer->audio_frames() << " audio frames";
  EXPECT_EQ(viewer->video_width(), 640u);
}

namespace {

unsigned count_webrtcbins(GstElement *bin) {
  unsigned n = 0;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    n += f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin");
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

}  // namespace

// In one process, so the leaks tracer (integration-leaks) sees every
// upstream session the relay made come back.
TEST(RelayInProcess, UpstreamLossesReleaseEachSessionAndTheViewerResumes) {
  unsigned root_port = free_tcp_port(), relay_port = free_tcp_port();
  auto root = std::make_unique<Broadcast>(root_launch(root_port), root_port);
  ASSERT_TRUE(root->start());
  Broadcast relay(relay_launch(whep(root_port), relay_port, "upstream-timeout=500"), relay_port);
  ASSERT_TRUE(relay.start()) << relay.last_error();
  GstElement *relaysrc = gst_bin_get_by_name(GST_BIN(GST_OBJECT_PARENT(relay.sink())), "r");
  ASSERT_TRUE(relaysrc);
  auto viewer = watch(whep(relay_port));
  ASSERT_TRUE(viewer);
  ASSERT_TRUE(wait_until([&] { return viewer->video_frames() > 10; }, 10000ms));

  for (int round = 0; round < 3; ++round) {
    root.reset();  // the root goes away, with its side of the relay's session
    ASSERT_TRUE(wait_until([&] {
      gchar *state = nullptr;
      g_object_get(relaysrc, "upstream-state", &state, nullptr);
      bool lost = g_strcmp0(state, "live") != 0;
      g_free(state);
      return lost;
    }, 5000ms)) << "round " << round << ": the relay never noticed the loss";
    unsigned frames = viewer->video_frames();
    root = std::make_unique<Broadcast>(root_launch(root_port), root_port);
    ASSERT_TRUE(root->start());
    EXPECT_TRUE(wait_until([&] { return viewer->video_frames() > frames + 10; }, 10000ms))
        << "round " << round << ": the relay's viewer did not resume";
  }
  guint reconnects = 0;
  g_object_get(relaysrc, "reconnects", &reconnects, nullptr);
  EXPECT_GE(reconnects, 3u);
  // Old upstream sessions are gone, not piling up inside the relay.
  EXPECT_EQ(count_webrtcbins(relaysrc), 1u);
  viewer->disconnect();
  gst_object_unref(relaysrc);
}

// A relay child serves a whole subtree: one lossy report window of its own
// link must not move its video down or pause it, so its layer is pinned.
TEST(RelayInProcess, ARelayChildIsNotMovedByItsOwnFeedback) {
  unsigned root_port = free_tcp_port(), relay_port = free_tcp_port();
  Broadcast root(root_launch(root_port), root_port);
  struct Joined {
    std::mutex mutex;
    std::vector<std::string> ids;
  } joined;
  g_signal_connect(root.sink(), "viewer-joined", G_CALLBACK(+[](GstElement *, const gchar *id, Joined *j) {
                     std::lock_guard<std::mutex> lock(j->mutex);
                     j->ids.push_back(id);
                   }),
                   &joined);
  ASSERT_TRUE(root.start());
  Broadcast relay(relay_launch(whep(root_port), relay_port), relay_port);
  ASSERT_TRUE(relay.start()) << relay.last_error();
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard<std::mutex> lock(joined.mutex);
    return !joined.ids.empty();
  }, 10000ms));
  std::string id;
  {
    std::lock_guard<std::mutex> lock(joined.mutex);
    id = joined.ids.front();
  }
  GstStructure *stats = nullptr;
  g_signal_emit_by_name(root.sink(), "get-viewer-stats", id.c_str(), &stats);
  ASSERT_TRUE(stats);
  gboolean pinned = FALSE;
  EXPECT_TRUE(gst_structure_get_boolean(stats, "video-layer-pinned", &pinned) && pinned);
  gst_structure_free(stats);
}

// The CLI's help states broadcastsink's defaults, which the element
// defines: they must be the same numbers (an option left unset is not
// passed on, so the element's default is what runs).
TEST(Cli, HelpStatesTheElementsDefaults) {
  const char *cli = g_getenv("WB_TEST_CLI");
  ASSERT_TRUE(cli) << "WB_TEST_CLI is not set";
  gchar *out = nullptr;
  const gchar *argv[] = {cli, "--help", nullptr};
  ASSERT_TRUE(g_spawn_sync(nullptr, const_cast<gchar **>(argv), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, &out,
                           nullptr, nullptr, nullptr));
  const std::string help = out ? out : "";
  g_free(out);
  GstElement *sink = gst_element_factory_make("broadcastsink", nullptr);
  ASSERT_TRUE(sink);
  const std::pair<const char *, const char *> options[] = {
      {"--max-viewers", "max-viewers"},
      {"--max-pending", "max-pending-viewers"},
      {"--max-pending-webrtcbin", "max-pending-webrtcbin"},
      {"--sender-threads", "sender-threads"},
      {"--sender-report-time", "sender-report-time"},
      {"--offers-per-second", "offers-per-second"},
      {"--http-timeout", "http-request-timeout"},
      {"--max-http-connections", "max-http-connections"},
      {"--address", "address"},
  };
  for (const auto &[option, property] : options) {
    const size_t at = help.find(" " + std::string(option) + "=");
    ASSERT_NE(at, std::string::npos) << option << " is not in the help";
    const std::string line = help.substr(at, help.find('\n', at) - at);
    const size_t stated = line.rfind("(default: ");
    ASSERT_NE(stated, std::string::npos) << line;
    std::string value = line.substr(stated + 10);
    value = value.substr(0, value.find_first_of(",)"));
    GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(sink), property);
    ASSERT_TRUE(spec) << property;
    GValue def = G_VALUE_INIT;
    g_value_init(&def, spec->value_type);
    g_param_value_set_default(spec, &def);
    gchar *text = G_VALUE_HOLDS_STRING(&def)  ? g_value_dup_string(&def)
                  : G_VALUE_HOLDS_ENUM(&def) ? g_strdup(g_enum_get_value(G_ENUM_CLASS(g_type_class_peek(spec->value_type)),
                                                                         g_value_get_enum(&def))->value_nick)
                                              : g_strdup_value_contents(&def);
    EXPECT_EQ(value, text) << option << " says its default is " << value << ", " << property << "'s is " << text;
    g_free(text);
    g_value_unset(&def);
  }
  gst_object_unref(sink);
}


// A picture as demanding as a camera's: snow fills the bitrate asked for
// (the default pattern, mostly flat, uses a fraction of it), and an unknown
// pattern is refused with the list of known ones.
TEST(Cli, PatternSnowFillsTheBitrateAndAnUnknownPatternIsRefused) {
  const char *cli = g_getenv("WB_TEST_CLI");
  ASSERT_TRUE(cli) << "WB_TEST_CLI is not set";
  gchar *err = nullptr;
  gint status = 0;
  const gchar *bad[] = {cli, "--pattern", "plaid", nullptr};
  ASSERT_TRUE(g_spawn_sync(nullptr, const_cast<gchar **>(bad), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, nullptr,
                           &err, &status, nullptr));
  const std::string refusal = err ? err : "";
  g_free(err);
  EXPECT_FALSE(g_spawn_check_wait_status(status, nullptr));
  EXPECT_NE(refusal.find("'plaid' is not one of videotestsrc's patterns"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("snow"), std::string::npos) << refusal;

  const unsigned port = free_tcp_port();
  NodeProcess node({cli, "--pattern", "snow", "--bitrate", "1200", "--no-audio", "--port", std::to_string(port),
                    "--address", "127.0.0.1", "--ice-address", "127.0.0.1"});
  auto viewer = watch(whep(port), 20000ms);
  ASSERT_TRUE(viewer) << node.output();
  ASSERT_TRUE(wait_until([&] { return viewer->video_frames() > 30; }, 10000ms)) << viewer->video_frames();
  const std::string stats = "http://127.0.0.1:" + std::to_string(port) + "/stats";
  const int64_t start = video_stream_stat(stats, "bytes_sent");
  std::this_thread::sleep_for(4s);  // the measurement window
  const int64_t end = video_stream_stat(stats, "bytes_sent");
  ASSERT_GE(start, 0);
  const double kbps = double(end - start) * 8 / 1000 / 4;
  std::cout << "[ pattern  ] snow at --bitrate 1200: " << kbps << " kbit/s to one viewer\n";
  EXPECT_GT(kbps, 800) << "snow did not fill the bitrate";
  EXPECT_GT(viewer->video_frames(), 60u);
}

// --layers with a layer in a codec of its own: a viewer that decodes only
// VP8 plays that layer; an unknown codec is refused, naming the item.
TEST(Cli, ALayerInItsOwnCodecServesViewersThatDecodeOnlyThat) {
  const char *cli = g_getenv("WB_TEST_CLI");
  ASSERT_TRUE(cli) << "WB_TEST_CLI is not set";
  gchar *err = nullptr;
  gint status = 0;
  const gchar *bad[] = {cli, "--layers", "640x360@600,320x180@200:hevc", nullptr};
  ASSERT_TRUE(g_spawn_sync(nullptr, const_cast<gchar **>(bad), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, nullptr,
                           &err, &status, nullptr));
  const std::string refusal = err ? err : "";
  g_free(err);
  EXPECT_FALSE(g_spawn_check_wait_status(status, nullptr));
  EXPECT_NE(refusal.find("'320x180@200:hevc': the codec must be h264, vp8 or vp9"), std::string::npos) << refusal;

  const unsigned port = free_tcp_port();
  NodeProcess node({cli, "--layers", "640x360@600,320x180@200:vp8", "--no-audio", "--port", std::to_string(port),
                    "--address", "127.0.0.1", "--ice-address", "127.0.0.1"});
  WhepViewer::Options vp8_only;
  vp8_only.video_codec = "VP8";
  vp8_only.audio = false;
  std::unique_ptr<WhepViewer> viewer;
  // 406 until the VP8 layer flows.
  ASSERT_TRUE(wait_until(
      [&] {
        viewer = std::make_unique<WhepViewer>(vp8_only);
        return viewer->connect(whep(port)) == 201;
      },
      20000ms))
      << node.output();
  ASSERT_TRUE(wait_until([&] { return viewer->video_frames() > 30; }, 10000ms)) << viewer->video_frames();
  EXPECT_EQ(viewer->video_width(), 320u);
  EXPECT_NE(node.output().find("layer 1: 320x180@30, 200 kbps, vp8 by vp8enc"), std::string::npos) << node.output();
}
