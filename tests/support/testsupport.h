// Test helpers: a broadcasting pipeline, a real webrtcbin WHEP viewer that
// decodes what it receives, plain HTTP over loopback, and waiting on
// conditions with deadlines (never sleep-and-hope).
#pragma once

#include <gio/gio.h>
#include <gtest/gtest.h>
#include <gst/gst.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace wbtest {

using namespace std::chrono_literals;

// `timeout` times WB_TEST_TIME_SCALE (default 1): runs under emulation
// (tests/arm64, qemu-user) set it, where an encoder is many times slower.
std::chrono::milliseconds scaled(std::chrono::milliseconds timeout);

// Polls `condition` until it holds or scaled(`timeout`) passes.
bool wait_until(const std::function<bool()> &condition, std::chrono::milliseconds timeout);

unsigned free_tcp_port();

// Test hygiene for a webrtcbin of ours: UPnP and ICE-TCP off, and ICE on
// 127.0.0.1 (libnice never gathers on loopback by itself).
void use_loopback_for_ice(GstElement *webrtc);
// Waits for a webrtcbin promise and returns its reply (may be null).
const GstStructure *wait_reply(GstPromise *promise);

struct HttpResponse {
  int status = 0;
  std::string url;  // that answered, after redirects
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string header(const std::string &name) const;
};

// https:// URLs are verified against `tls_ca` (a PEM file) when given, else
// against the system's authorities; a refused certificate gives status 0.
HttpResponse http_request(const std::string &method, const std::string &url,
                          const std::string &content_type = "", const std::string &body = "",
                          const std::map<std::string, std::string> &headers = {}, bool follow_redirects = true,
                          const std::string &tls_ca = "");

// A counter of the video stream in a node's GET /stats (`stats_url`), e.g.
// "bytes_sent" or "keyframe_requests_sent"; -1 when it cannot be read.
int64_t video_stream_stat(const std::string &stats_url, const char *field);

// A live test broadcast into broadcastsink (or any launch line with a
// broadcastsink named "bs").
class Broadcast {
 public:
  struct Options {
    std::string video = "h264";  // h264, vp8, vp9, none
    bool audio = true;
    std::string extra_sink_props;  // e.g. "max-viewers=2"
    unsigned gop = 60;             // frames between natural keyframes
    // The sink serves HTTPS (tls-certificate and tls-key in
    // extra_sink_props) with a certificate this CA file vouches for.
    std::string tls_ca;
  };
  explicit Broadcast(const Options &options);
  // `tls_ca`: as in Options.
  explicit Broadcast(const std::string &launch_line, unsigned port, const std::string &tls_ca = "");
  ~Broadcast();

  bool start();  // PLAYING and the page answering
  // Offers get 409 until media flows; waits for that (not for a time).
  bool wait_media_flowing();
  void stop();
  GstElement *sink() const { return sink_; }
  GstElement *pipeline() const { return pipeline_; }
  unsigned port() const { return port_; }
  std::string url(const std::string &path = "/whep") const;
  std::string last_error() const;
  bool got_eos() const { return eos_.load(); }
  guint viewer_count() const;

 private:
  GstElement *pipeline_ = nullptr;
  GstElement *sink_ = nullptr;
  unsigned port_ = 0;
  std::string tls_ca_;
  mutable std::mutex mutex_;
  std::string error_;
  std::atomic<bool> eos_{false};
};

// A WHEP viewer: webrtcbin offering recvonly video+audio with its own
// payload types, decoding what arrives.
class WhepViewer {
 public:
  struct Options {
    std::string video_codec = "H264";  // H264, VP8, VP9, or "" for no video m-line
    int video_pt = 102;                // deliberately not the server's
    int audio_pt = 109;
    bool audio = true;
    bool decode = true;  // false: count RTP packets only (cheap, for load)
    bool nack = false;   // offer generic NACK and ask for lost video packets
    // Loss on the way in: the first arrival of every video packet whose
    // sequence number is a multiple of this is dropped before SRTP (0: none).
    unsigned drop_video_seq_every = 0;
    std::string tls_ca;  // for https:// endpoints of a private CA (see http_request)
  };
  WhepViewer();
  explicit WhepViewer(const Options &options);
  ~WhepViewer();

  // Offers, POSTs to `endpoint`, applies the answer. Returns the HTTP status.
  int connect(const std::string &endpoint);
  void disconnect(bool send_delete = true);
  // Stops receiving without telling the server (a vanished viewer).
  void vanish();

  unsigned video_frames() const { return video_frames_.load(); }
  unsigned audio_frames() const { return audio_frames_.load(); }
  // Time from connect() to the first decoded video frame (or -1).
  double first_video_frame_ms() const;
  const std::string &answer() const { return answer_; }
  const std::string &session_url() const { return session_url_; }
  // The endpoint that answered the offer (differs after a 307).
  const std::string &answered_by() const { return answered_by_; }
  // The Link header of the 201.
  const std::string &link() const { return link_; }
  // The Broadcast-Unserved header of the 201: what of the offer is not sent, and why.
  const std::string &unserved() const { return unserved_; }
  std::string error() const { return error_; }
  // The width of the latest decoded frame.
  unsigned video_width() const { return video_width_.load(); }
  unsigned video_gaps() const { return video_gaps_.load(); }
  // Times a video packet's sequence number did not follow the one before
  // (a gap, a jump or a step back).
  unsigned video_seq_breaks() const { return video_seq_breaks_.load(); }
  unsigned video_packets() const { return video_packets_.load(); }
  // Video packets dropped on the way in (see Options::drop_video_seq_every).
  unsigned video_dropped() const { return video_dropped_.load(); }
  // Of those, how many arrived again (retransmitted) after being dropped.
  unsigned video_dropped_came_again() const { return video_came_again_.load(); }
  // The longest a dropped packet took to come again, in ms.
  double slowest_came_again_ms() const { return slowest_came_again_us_.load() / 1000.0; }
  // Streams for which an RTCP sender report arrived (webrtcbin's
  // remote-outbound-rtp stats): what a browser needs for lip sync.
  unsigned sender_reports_seen();
  // The last sender report of each stream as this viewer's RTP session
  // holds it: which RTP time the sender says was which NTP time.
  struct SenderReport {
    guint32 ssrc = 0;
    guint clock_rate = 0;
    guint64 ntp = 0;  // NTP 32.32
    guint32 rtp = 0;
  };
  std::vector<SenderReport> sender_reports();

 private:
  static void on_pad_added(GstElement *webrtc, GstPad *pad, WhepViewer *self);
  void count_decoded(GstPad *pad, bool video);
  void drop_on_the_way_in();

  Options options_;
  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;
  std::string answer_;
  std::string session_url_;
  std::string answered_by_;
  std::string link_;
  std::string unserved_;
  std::string error_;
  std::chrono::steady_clock::time_point connect_time_;
  std::atomic<gint64> first_video_us_{-1};
  std::atomic<unsigned> video_frames_{0};
  std::atomic<unsigned> audio_frames_{0};
  std::atomic<unsigned> video_width_{0};
  std::atomic<unsigned> video_gaps_{0};
  std::atomic<unsigned> video_seq_breaks_{0};
  std::atomic<unsigned> video_packets_{0};
  std::atomic<unsigned> video_dropped_{0};
  std::atomic<unsigned> video_came_again_{0};
  std::atomic<gint64> slowest_came_again_us_{0};
  std::mutex dropped_lock_;
  std::map<guint16, gint64> dropped_seqs_;  // seq: when dropped (monotonic us), 0 once it came again
  std::atomic<guint64> last_video_pts_{GST_CLOCK_TIME_NONE};
};

// A node (root or relay) in its own process: tests/support/node.cpp running
// a gst-launch description. Killed when destroyed.
class NodeProcess {
 public:
  explicit NodeProcess(const std::string &launch);
  // Any program (the gst-broadcast CLI): wait on its HTTP side, not READY.
  explicit NodeProcess(const std::vector<std::string> &argv);
  ~NodeProcess();
  bool wait_ready(std::chrono::milliseconds timeout = 10000ms);
  // factory:klass of every element in the node's pipeline, recursively.
  std::vector<std::string> elements();
  void kill();  // SIGKILL: no goodbye to anyone
  std::string output() const;

 private:
  void spawn(const std::vector<std::string> &argv);
  bool wait_line(const std::string &prefix, std::chrono::milliseconds timeout, std::string *line);
  GSubprocess *process_ = nullptr;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// Adds recvonly transceivers for `options` to `webrtc` (in a playing
// pipeline), makes the offer, applies it and waits for every candidate.
std::string make_offer_with(GstElement *webrtc, const WhepViewer::Options &options);

// An SDP offer from a throwaway webrtcbin, for signalling tests.
std::string make_offer(const WhepViewer::Options &options);

// A broadcast with one viewer watching, for tests that throw bad input at
// it: whatever they do, the watcher must still be served.
class WatchedBroadcast : public ::testing::Test {
 protected:
  void start(const std::string &sink_props);
  // The watcher decodes on without a gap.
  void expect_watcher_served();
  std::string url(const std::string &path = "/whep") { return broadcast_->url(path); }

  std::unique_ptr<Broadcast> broadcast_;
  WhepViewer watcher_;
};

// This process's open descriptors, threads and resident memory.
unsigned open_descriptors();
unsigned threads();
long rss_kb();

// Live instances of one GObject type, counted by wrapping its class's
// constructed and finalize for the life of the counter (GLib's own count,
// GOBJECT_DEBUG=instance-count, works only in a GLib built with
// G_ENABLE_DEBUG, which distributions' are not). One counter per type at a
// time.
template <GType (*get_type)()>
class InstanceCount {
 public:
  InstanceCount() {
    klass_ = G_OBJECT_CLASS(g_type_class_ref(get_type()));
    constructed_ = klass_->constructed;
    finalize_ = klass_->finalize;
    klass_->constructed = [](GObject *o) {
      alive_.fetch_add(1);
      if (constructed_) constructed_(o);
    };
    klass_->finalize = [](GObject *o) {
      alive_.fetch_sub(1);
      finalize_(o);
    };
  }
  ~InstanceCount() {
    klass_->constructed = constructed_;
    klass_->finalize = finalize_;
    g_type_class_unref(klass_);
  }
  InstanceCount(const InstanceCount &) = delete;
  InstanceCount &operator=(const InstanceCount &) = delete;
  int alive() const { return alive_.load(); }

 private:
  GObjectClass *klass_;
  static inline void (*constructed_)(GObject *) = nullptr;
  static inline void (*finalize_)(GObject *) = nullptr;
  static inline std::atomic<int> alive_{0};
};

}  // namespace wbtest
