// Latency added per relay hop, and what a leaf viewer sees while the tree
// heals.
//
// Hop mode (default):
//   relay-hops --root URL --relay URL1 [--relay URL2 ...] [--seconds N] [--warmup N] [--json FILE]
// opens one WHEP viewer (real webrtcbin, no decoding) on the root and one on
// each relay, all in this process, and stamps every video RTP packet with
// its local arrival time (g_get_monotonic_time) at the src pad of the
// nicesrc inside webrtcbin, i.e. as it leaves the socket, before SRTP, the
// jitter buffer or anything else. SRTP leaves the 12-byte RTP header in the
// clear, so the sequence number and timestamp are read from the packet as
// received. During a relay's first upstream session the relay passes
// sequence numbers and timestamps through unchanged, so (timestamp, seq)
// names the same packet at the root and at every relay, and
//   delay(relay k) = t_arrival(viewer on relay k) - t_arrival(viewer on root)
// is the latency the k hops add on top of the root's own delivery. The
// relays are given in tree order: the first --relay pulls from the root
// (depth 1), the second from the first (depth 2), ... "missing" counts the
// packets the root's viewer recorded in the window that a relay's viewer
// never received (the relays' windows close 0.5 s after the root's).
//
// Watch mode:
//   relay-hops --watch URL [--seconds N] [--gap-ms MS]
// holds one viewer session (never restarted) and prints, on stdout:
//   FIRST_PACKET at_ms=<wall clock ms>
//   TICK at_ms=<..> video=<packets in the last second> total=<..>
//   GAP_END at_ms=<first packet after the gap> gap_ms=<silence> last_ms=<last packet before>
//           seq_jump=<seq after - seq before> ts_jump_ms=<RTP timestamp jump in ms>
//           seq_before=<..> seq_after=<..>
//   SUMMARY ...
// at_ms is the wall clock (g_get_real_time) so a script can compare it with
// `date +%s%3N`. Used by bench/relay-recovery.sh.
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <nice/agent.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

std::atomic<bool> g_stop{false};

constexpr int kVideoPt = 102;  // our offer's payload types; the answer keeps them
constexpr int kAudioPt = 109;


// What arrived at the socket, classified by its first bytes (RFC 7983, RFC 5761).
enum class Kind { Stun, Dtls, Rtcp, Video, Audio, Other };

Kind classify(const guint8 *d, gsize n, guint16 *seq, guint32 *ts) {
  if (n < 1) return Kind::Other;
  guint8 b0 = d[0];
  if (b0 <= 3) return Kind::Stun;
  if (b0 >= 20 && b0 <= 63) return Kind::Dtls;
  if (b0 < 128 || b0 > 191 || n < 12) return Kind::Other;  // RTP/RTCP: version 2
  guint8 b1 = d[1];
  if (b1 >= 192 && b1 <= 223) return Kind::Rtcp;  // SR 200, RR 201, ..., PSFB 206
  int pt = b1 & 0x7f;
  *seq = guint16((d[2] << 8) | d[3]);
  *ts = (guint32(d[4]) << 24) | (guint32(d[5]) << 16) | (guint32(d[6]) << 8) | d[7];
  if (pt == kVideoPt) return Kind::Video;
  if (pt == kAudioPt) return Kind::Audio;
  return Kind::Other;
}

struct WatchState {
  gint64 last_real_us = -1;
  guint16 last_seq = 0;
  guint32 last_ts = 0;
};

// A WHEP viewer that taps the packets at the socket.
class TapViewer {
 public:
  explicit TapViewer(std::string url) : url_(std::move(url)) {
    pipeline_ = gst_pipeline_new(nullptr);
    webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
    g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
    use_loopback_for_ice(webrtc_);
    gst_bin_add(GST_BIN(pipeline_), webrtc_);
    g_signal_connect(webrtc_, "deep-element-added", G_CALLBACK(on_deep_element_added), this);
    g_signal_connect(webrtc_, "pad-added", G_CALLBACK(on_pad_added), this);
  }
  ~TapViewer() {
    if (!session_url_.empty()) http_request("DELETE", session_url_);
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
  }

  int connect() {
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
    WhepViewer::Options options;
    options.video_pt = kVideoPt;
    options.audio_pt = kAudioPt;
    std::string sdp = make_offer_with(webrtc_, options);
    if (sdp.empty()) {
      error_ = "no offer";
      return 0;
    }

    connect_us_ = g_get_monotonic_time();
    HttpResponse response = http_request("POST", url_, "application/sdp", sdp);
    if (response.status != 201) {
      error_ = response.body;
      return response.status;
    }
    std::string location = response.header("location");
    auto scheme_end = url_.find("://");
    auto path_start = url_.find('/', scheme_end + 3);
    session_url_ = location.rfind("http", 0) == 0 ? location : url_.substr(0, path_start) + location;
    GstSDPMessage *answer_sdp;
    gst_sdp_message_new(&answer_sdp);
    gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(response.body.data()), response.body.size(),
                                 answer_sdp);
    GstWebRTCSessionDescription *answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, answer_sdp);
    GstPromise *promise = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-remote-description", answer, promise);
    const GstStructure *reply = wait_reply(promise);
    if (reply && gst_structure_has_field(reply, "error")) error_ = "answer refused";
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(answer);
    return response.status;
  }

  const std::string &url() const { return url_; }
  const std::string &error() const { return error_; }
  unsigned video_packets() const { return video_.load(); }
  unsigned audio_packets() const { return audio_.load(); }
  unsigned rtcp_packets() const { return rtcp_.load(); }
  unsigned other_packets() const { return other_.load(); }
  unsigned duplicates() const { return dups_.load(); }
  gint64 first_video_after_connect_ms() const {
    gint64 f = first_video_us_.load();
    return f < 0 ? -1 : (f - connect_us_) / 1000;
  }

  void set_recording(bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (on) arrivals_.clear();
    recording_ = on;
  }
  std::unordered_map<guint64, gint64> arrivals() {
    std::lock_guard<std::mutex> lock(mutex_);
    return arrivals_;
  }
  void set_watch(gint64 gap_us) { watch_gap_us_ = gap_us; }

 private:
  static void on_deep_element_added(GstBin *, GstBin *, GstElement *element, TapViewer *self) {
    GstElementFactory *f = gst_element_get_factory(element);
    if (!f || g_strcmp0(GST_OBJECT_NAME(f), "nicesrc") != 0) return;
    GstPad *src = gst_element_get_static_pad(element, "src");
    if (!src) return;
    gst_pad_add_probe(src, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      on_socket_data, self, nullptr);
    gst_object_unref(src);
  }

  static GstPadProbeReturn on_socket_data(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<TapViewer *>(data);
    gint64 now = g_get_monotonic_time();
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
      GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
      for (guint i = 0; i < gst_buffer_list_length(list); ++i) self->on_packet(gst_buffer_list_get(list, i), now);
    } else {
      self->on_packet(GST_PAD_PROBE_INFO_BUFFER(info), now);
    }
    return GST_PAD_PROBE_OK;
  }

  void on_packet(GstBuffer *buf, gint64 now) {
    guint8 head[12];
    gsize n = gst_buffer_extract(buf, 0, head, sizeof head);
    guint16 seq = 0;
    guint32 ts = 0;
    switch (classify(head, n, &seq, &ts)) {
      case Kind::Video: break;
      case Kind::Audio: audio_++; return;
      case Kind::Rtcp: rtcp_++; return;
      default: other_++; return;
    }
    video_++;
    gint64 expected = -1;
    first_video_us_.compare_exchange_strong(expected, now);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (recording_) {
        guint64 key = (guint64(ts) << 16) | seq;
        if (!arrivals_.emplace(key, now).second) dups_++;  // keep the first arrival
      }
    }
    if (watch_gap_us_ > 0) watch(seq, ts);
  }

  void watch(guint16 seq, guint32 ts) {
    gint64 real = g_get_real_time();
    std::lock_guard<std::mutex> lock(mutex_);
    if (watch_.last_real_us < 0) {
      printf("FIRST_PACKET at_ms=%lld seq=%u\n", (long long)(real / 1000), seq);
      fflush(stdout);
    } else if (real - watch_.last_real_us >= watch_gap_us_) {
      printf("GAP_END at_ms=%lld gap_ms=%.1f last_ms=%lld seq_jump=%d ts_jump_ms=%.1f seq_before=%u seq_after=%u\n",
             (long long)(real / 1000), (real - watch_.last_real_us) / 1000.0, (long long)(watch_.last_real_us / 1000),
             int(gint16(guint16(seq - watch_.last_seq))), gint32(ts - watch_.last_ts) / 90.0, watch_.last_seq, seq);
      fflush(stdout);
    }
    watch_.last_real_us = real;
    watch_.last_seq = seq;
    watch_.last_ts = ts;
  }

  static void on_pad_added(GstElement *, GstPad *pad, TapViewer *self) {
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    // Nothing is decoded; the pads only need somewhere to go.
    GstElement *sink = gst_element_factory_make("fakesink", nullptr);
    g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
    gst_bin_add(GST_BIN(self->pipeline_), sink);
    gst_element_set_state(sink, GST_STATE_PLAYING);
    GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
  }

  std::string url_;
  std::string session_url_;
  std::string error_;
  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;
  gint64 connect_us_ = 0;
  std::atomic<gint64> first_video_us_{-1};
  std::atomic<unsigned> video_{0}, audio_{0}, rtcp_{0}, other_{0}, dups_{0};
  std::mutex mutex_;
  bool recording_ = false;
  std::unordered_map<guint64, gint64> arrivals_;
  gint64 watch_gap_us_ = 0;
  WatchState watch_;
};

struct Stats {
  size_t n = 0;
  double min = 0, p50 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, size_t(p * (v.size() - 1) + 0.5))]; };
  s.min = v.front();
  s.p50 = pct(0.50);
  s.p95 = pct(0.95);
  s.p99 = pct(0.99);
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  return s;
}

// Delays (ms) of the packets seen by both: b - a.
std::vector<double> delays(const std::unordered_map<guint64, gint64> &a, const std::unordered_map<guint64, gint64> &b) {
  std::vector<double> out;
  for (const auto &kv : b) {
    auto it = a.find(kv.first);
    if (it != a.end()) out.push_back((kv.second - it->second) / 1000.0);
  }
  return out;
}

std::string stats_json(const Stats &s) {
  char buf[256];
  snprintf(buf, sizeof buf,
           "\"matched\": %zu, \"min_ms\": %.3f, \"p50_ms\": %.3f, \"p95_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"max_ms\": %.3f, \"mean_ms\": %.3f",
           s.n, s.min, s.p50, s.p95, s.p99, s.max, s.mean);
  return buf;
}

void print_row(const char *what, const Stats &s, long missing = -1) {
  printf("%-22s %8zu %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f", what, s.n, s.min, s.p50, s.p95, s.p99, s.max, s.mean);
  if (missing >= 0) printf(" %8ld", missing);
  printf("\n");
}

int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s --root URL --relay URL [--relay URL ...] [--seconds N] [--warmup N] [--json FILE]\n"
          "       %s --watch URL [--seconds N] [--gap-ms MS]\n",
          argv0, argv0);
  return 2;
}

int run_watch(const std::string &url, int seconds, int gap_ms) {
  TapViewer viewer(url);
  viewer.set_watch(gint64(gap_ms) * 1000);
  int status = viewer.connect();
  printf("CONNECTED status=%d url=%s %s\n", status, url.c_str(), viewer.error().c_str());
  fflush(stdout);
  if (status != 201) return 1;
  gint64 start = g_get_monotonic_time();
  unsigned last = 0;
  gint64 next_tick = start + G_USEC_PER_SEC;
  while (!g_stop.load() && (seconds <= 0 || g_get_monotonic_time() - start < gint64(seconds) * G_USEC_PER_SEC)) {
    std::this_thread::sleep_for(20ms);
    if (g_get_monotonic_time() >= next_tick) {
      next_tick += G_USEC_PER_SEC;
      unsigned now = viewer.video_packets();
      printf("TICK at_ms=%lld video=%u total=%u audio=%u\n", (long long)(g_get_real_time() / 1000), now - last, now,
             viewer.audio_packets());
      fflush(stdout);
      last = now;
    }
  }
  printf("SUMMARY video=%u audio=%u rtcp=%u other=%u\n", viewer.video_packets(), viewer.audio_packets(),
         viewer.rtcp_packets(), viewer.other_packets());
  fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  std::string root, watch_url, json;
  std::vector<std::string> relays;
  int seconds = 20, warmup = 3, gap_ms = 150;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) exit(usage(argv[0]));
      return argv[++i];
    };
    if (a == "--root") root = value();
    else if (a == "--relay") relays.push_back(value());
    else if (a == "--watch") watch_url = value();
    else if (a == "--seconds") seconds = atoi(value().c_str());
    else if (a == "--warmup") warmup = atoi(value().c_str());
    else if (a == "--gap-ms") gap_ms = atoi(value().c_str());
    else if (a == "--json") json = value();
    else return usage(argv[0]);
  }
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  if (!watch_url.empty()) return run_watch(watch_url, seconds, gap_ms);
  if (root.empty() || relays.empty()) return usage(argv[0]);

  std::vector<std::unique_ptr<TapViewer>> viewers;
  viewers.push_back(std::make_unique<TapViewer>(root));
  for (const auto &r : relays) viewers.push_back(std::make_unique<TapViewer>(r));
  for (auto &v : viewers) {
    int status = v->connect();
    if (status != 201) {
      fprintf(stderr, "%s answered %d: %s\n", v->url().c_str(), status, v->error().c_str());
      return 1;
    }
  }
  bool flowing = wait_until(
      [&] { return std::all_of(viewers.begin(), viewers.end(), [](auto &v) { return v->video_packets() > 0; }); },
      20000ms);
  for (size_t i = 0; i < viewers.size(); ++i)
    fprintf(stderr, "viewer %zu (%s): first video packet %lld ms after its POST\n", i, viewers[i]->url().c_str(),
            (long long)viewers[i]->first_video_after_connect_ms());
  if (!flowing) {
    fprintf(stderr, "not every viewer received video within 20 s\n");
    return 1;
  }
  // Joins cause keyframe requests and bursts; measure the steady stream.
  std::this_thread::sleep_for(std::chrono::seconds(warmup));
  std::vector<unsigned> start;
  for (auto &v : viewers) {
    start.push_back(v->video_packets());
    v->set_recording(true);
  }
  for (int s = 0; s < seconds * 10 && !g_stop.load(); ++s) std::this_thread::sleep_for(100ms);
  // The root's window closes first; the relays' a little later, so that
  // every packet the root viewer recorded has had time to reach the relays'
  // viewers: a root packet a relay viewer never got is then lost, not cut off.
  viewers[0]->set_recording(false);
  std::this_thread::sleep_for(500ms);
  std::vector<std::unordered_map<guint64, gint64>> arr;
  for (auto &v : viewers) {
    v->set_recording(false);
    arr.push_back(v->arrivals());
  }

  printf("window=%ds (relays' +0.5 s) video packets per viewer:", seconds);
  for (size_t i = 0; i < viewers.size(); ++i) printf(" %s=%zu", i ? ("relay" + std::to_string(i)).c_str() : "root",
                                                     arr[i].size());
  printf("\n");
  printf("%-22s %8s %8s %8s %8s %8s %8s %8s %8s\n", "delay vs root (ms)", "matched", "min", "p50", "p95", "p99", "max",
         "mean", "missing");
  std::vector<Stats> depth, hop;
  std::vector<size_t> missing;
  for (size_t k = 1; k < viewers.size(); ++k) {
    depth.push_back(stats(delays(arr[0], arr[k])));
    missing.push_back(arr[0].size() - depth.back().n);
    std::string label = std::to_string(k) + (k == 1 ? " hop" : " hops") + " (relay" + std::to_string(k) + ")";
    print_row(label.c_str(), depth.back(), long(missing.back()));
  }
  printf("%-22s %8s %8s %8s %8s %8s %8s %8s\n", "added by hop (ms)", "matched", "min", "p50", "p95", "p99", "max",
         "mean");
  for (size_t k = 1; k < viewers.size(); ++k) {
    hop.push_back(stats(delays(arr[k - 1], arr[k])));
    std::string label = "hop " + std::to_string(k) + " (" + (k == 1 ? std::string("root") : "relay" + std::to_string(k - 1)) +
                        "->relay" + std::to_string(k) + ")";
    print_row(label.c_str(), hop.back());
  }
  unsigned dups = 0;
  for (auto &v : viewers) dups += v->duplicates();
  printf("duplicate (ts,seq) arrivals ignored: %u\n", dups);
  fflush(stdout);

  if (!json.empty()) {
    FILE *f = fopen(json.c_str(), "w");
    if (!f) {
      perror(json.c_str());
    } else {
      fprintf(f, "{\n  \"seconds\": %d,\n  \"root\": \"%s\",\n  \"viewers\": [", seconds, root.c_str());
      for (size_t i = 0; i < viewers.size(); ++i)
        fprintf(f, "%s\n    {\"url\": \"%s\", \"depth\": %zu, \"video_packets\": %zu}", i ? "," : "",
                viewers[i]->url().c_str(), i, arr[i].size());
      fprintf(f, "\n  ],\n  \"delay_vs_root\": [");
      for (size_t k = 0; k < depth.size(); ++k)
        fprintf(f, "%s\n    {\"depth\": %zu, \"url\": \"%s\", \"missing\": %zu, %s}", k ? "," : "", k + 1,
                relays[k].c_str(), missing[k], stats_json(depth[k]).c_str());
      fprintf(f, "\n  ],\n  \"per_hop\": [");
      for (size_t k = 0; k < hop.size(); ++k)
        fprintf(f, "%s\n    {\"hop\": %zu, %s}", k ? "," : "", k + 1, stats_json(hop[k]).c_str());
      fprintf(f, "\n  ]\n}\n");
      fclose(f);
    }
  }
  viewers.clear();
  bool matched = std::all_of(depth.begin(), depth.end(), [](const Stats &s) { return s.n > 0; });
  return matched ? 0 : 1;
}
