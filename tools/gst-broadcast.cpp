// gst-broadcast: command-line front end for the webrtcbroadcast plugin.
//
// Three modes, chosen by the first argument:
//   (none)  broadcast: builds a live pipeline (test pattern, V4L2 camera or a
//           user-supplied video branch, plus an optional Opus test tone) that
//           feeds broadcastsink. Hardware H.264 encoders are preferred; if one
//           exists but cannot start, the broadcast is restarted once with x264enc.
//   relay   relaysrc pulls a broadcast from an upstream WHEP endpoint and
//           broadcastsink serves it again, without decoding.
//   ingest  relaysrc is a WHIP endpoint for one publisher, broadcastsink
//           serves what it sends (WHIP in, WHEP out).
// Any mode can also push its stream to a WHIP endpoint (--push). It prints
// the URLs and shows a live status line (uptime, upstream, viewers, outgoing
// bitrate).
//
// Build: g++ -std=c++17 -Wall -Wextra $(pkg-config --cflags --libs
//        gstreamer-1.0 glib-2.0 gio-2.0) tools/gst-broadcast.cpp
// Debug: GST_DEBUG=gst-broadcast:5

#include <gio/gio.h>
#include <glib-unix.h>
#include <glib.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <unistd.h>

#include <algorithm>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(gst_broadcast_debug);
#define GST_CAT_DEFAULT gst_broadcast_debug

namespace {

constexpr const char *kSinkName = "bs";
constexpr const char *kRelaySrcName = "rs";
constexpr const char *kEncoderName = "venc";
constexpr const char *kVideoPadName = "video";
constexpr const char *kVideoTeeName = "vtee";
constexpr size_t kMaxLayers = 4;
constexpr const char *kVideoSourceName = "vsrc";
constexpr guint kStartupTimeoutSeconds = 10;  // hardware encoder must produce output by then
constexpr guint kEosTimeoutSeconds = 3;       // give EOS this long on Ctrl-C
constexpr guint kPlainStatusEverySeconds = 5; // status cadence when stdout is not a TTY

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

enum class Mode { Broadcast, Relay, Ingest };

// One encoding of the source (--layers); the first is the default for new viewers.
struct Layer {
  gint width = 0;
  gint height = 0;
  gint kbps = 0;
  // WxH@KBPS:CODEC: a layer in another codec than --codec's (VP8 beside
  // H.264, for browsers without an H.264 decoder), by its software encoder.
  bool own_codec = false;
  int codec = 0;  // a Codec, when own_codec
};

struct Options {
  Mode mode = Mode::Broadcast;
  gchar *device = nullptr;
  gchar *pattern = nullptr;  // videotestsrc's; null: smpte with a clock, or ball
  gchar *pipeline = nullptr;
  gchar *codec = nullptr;
  gchar *encoder = nullptr;
  gint bitrate = 800;
  gint width = 640;
  gint height = 360;
  gint fps = 30;
  gint keyframe_interval = 0;  // 0 = 2 seconds' worth
  gchar *layers_spec = nullptr;
  std::vector<Layer> layers;  // from layers_spec by validate(); empty: one encoder, from width/height/bitrate
  gint port = 8080;
  gchar *address = nullptr;
  gint max_viewers = 0;
  // -1: broadcastsink's default (see gst-inspect-1.0 broadcastsink)
  gint max_pending = -1;
  gint max_pending_webrtcbin = -1;
  gint offers_per_second = -1;
  gint http_timeout = -1;
  gint max_http_connections = -1;
  gint sender_threads = -1;
  gint start_kbps = -1;  // -1: the sink's default
  gchar *sender_report_time = nullptr;
  gchar *stun_server = nullptr;
  gchar *turn_servers = nullptr;
  gchar *ice_address = nullptr;
  gint ice_port = -1;  // -1: broadcastsink's default (the system picks one)
  gboolean no_audio = FALSE;
  // relay and ingest
  gchar *from = nullptr;
  gint whip_port = 0;
  gchar *whip_address = nullptr;
  gchar *token = nullptr;
  gchar *advertise_url = nullptr;
  gchar *node_id = nullptr;
  gint latency = -1;           // -1: relaysrc's default
  gint upstream_timeout = -1;  // -1: relaysrc's default
  // any mode
  gchar *push = nullptr;
  gchar *push_token = nullptr;
  gchar *viewer_token = nullptr;
  gchar *log_format = nullptr;     // null: text
  gchar *metrics = nullptr;        // null: the sink's default path
  gchar *metrics_token = nullptr;
  gchar *tls_cert = nullptr;
  gchar *tls_key = nullptr;
  gchar *tls_ca = nullptr;

  ~Options() {
    g_free(device);
    g_free(pattern);
    g_free(pipeline);
    g_free(codec);
    g_free(encoder);
    g_free(layers_spec);
    g_free(address);
    g_free(stun_server);
    g_free(turn_servers);
    g_free(ice_address);
    g_free(from);
    g_free(whip_address);
    g_free(token);
    g_free(advertise_url);
    g_free(node_id);
    g_free(push);
    g_free(push_token);
    g_free(viewer_token);
    g_free(metrics);
    g_free(log_format);
    g_free(metrics_token);
    g_free(tls_cert);
    g_free(tls_key);
    g_free(tls_ca);
    g_free(sender_report_time);
  }

  // One certificate serves the viewers' HTTP server and the WHIP endpoint.
  const char *scheme() const { return tls_cert ? "https" : "http"; }
  int gop() const { return keyframe_interval > 0 ? keyframe_interval : 2 * fps; }
  const char *listen_address() const { return (address && *address) ? address : "0.0.0.0"; }
  // One --address is enough to keep a whole ingest node on one interface.
  const char *whip_listen_address() const { return (whip_address && *whip_address) ? whip_address : listen_address(); }
};

const char *mode_name(Mode m) {
  switch (m) {
    case Mode::Broadcast: return "broadcast";
    case Mode::Relay: return "relay";
    case Mode::Ingest: return "ingest";
  }
  return "?";
}

enum class Codec { H264, VP8, VP9 };

const char *codec_name(Codec c) {
  switch (c) {
    case Codec::H264: return "h264";
    case Codec::VP8: return "vp8";
    case Codec::VP9: return "vp9";
  }
  return "?";
}

bool parse_codec(const char *s, Codec *out) {
  if (!g_ascii_strcasecmp(s, "h264") || !g_ascii_strcasecmp(s, "avc") ||
      !g_ascii_strcasecmp(s, "h.264")) {
    *out = Codec::H264;
  } else if (!g_ascii_strcasecmp(s, "vp8")) {
    *out = Codec::VP8;
  } else if (!g_ascii_strcasecmp(s, "vp9")) {
    *out = Codec::VP9;
  } else {
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Registry helpers
// ---------------------------------------------------------------------------

bool factory_exists(const char *name) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

// Element classes answer questions about properties before any element is
// made: a missing feature or a bad value stops the tool before it starts.
GObjectClass *ref_element_class(const char *factory_name) {
  GstElementFactory *f = gst_element_factory_find(factory_name);
  if (!f) return nullptr;
  auto *loaded = GST_ELEMENT_FACTORY(gst_plugin_feature_load(GST_PLUGIN_FEATURE(f)));
  gst_object_unref(f);
  if (!loaded) return nullptr;
  auto *klass = static_cast<GObjectClass *>(g_type_class_ref(gst_element_factory_get_element_type(loaded)));
  gst_object_unref(loaded);
  return klass;
}

bool factory_has_property(const char *factory_name, const char *property) {
  GObjectClass *klass = ref_element_class(factory_name);
  if (!klass) return false;
  bool found = g_object_class_find_property(klass, property) != nullptr;
  g_type_class_unref(klass);
  return found;
}

// The element's own range, so that the tool follows the plugin's limits.
bool in_uint_range(const char *factory_name, const char *property, gint value, const char *option) {
  GObjectClass *klass = ref_element_class(factory_name);
  if (!klass) return false;
  GParamSpec *ps = g_object_class_find_property(klass, property);
  bool ok = true;
  if (ps && G_IS_PARAM_SPEC_UINT(ps)) {
    const GParamSpecUInt *range = G_PARAM_SPEC_UINT(ps);
    ok = value >= 0 && static_cast<guint>(value) >= range->minimum && static_cast<guint>(value) <= range->maximum;
    if (!ok) g_printerr("%s must be between %u and %u\n", option, range->minimum, range->maximum);
  }
  g_type_class_unref(klass);
  return ok;
}

bool valid_element_name(const char *s) {
  if (!s || !*s) return false;
  for (const char *p = s; *p; ++p) {
    if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-') return false;
  }
  return true;
}

// Hardware if it is one of the encoders we know, or the factory says so.
bool factory_is_hardware(const std::string &name) {
  if (name == "v4l2h264enc" || name == "nvv4l2h264enc" || name == "vaapih264enc") return true;
  GstElementFactory *f = gst_element_factory_find(name.c_str());
  if (!f) return false;
  const gchar *klass = gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS);
  bool hw = klass && strstr(klass, "Hardware");
  gst_object_unref(f);
  return hw;
}

// Which of our codecs the factory's src pad can produce.
bool factory_codec(const char *name, Codec *out) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f) return false;
  struct Probe {
    const char *caps;
    Codec codec;
  } probes[] = {{"video/x-h264", Codec::H264}, {"video/x-vp8", Codec::VP8}, {"video/x-vp9", Codec::VP9}};
  bool found = false;
  for (const Probe &p : probes) {
    GstCaps *caps = gst_caps_from_string(p.caps);
    bool ok = gst_element_factory_can_src_any_caps(f, caps);
    gst_caps_unref(caps);
    if (ok) {
      *out = p.codec;
      found = true;
      break;
    }
  }
  gst_object_unref(f);
  return found;
}

// Quote a user string for use as a property value in a gst_parse_launch line.
std::string launch_quote(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// If broadcastsink is not in the registry, look next to the executable:
// a meson build puts the tool in build/tools and the plugin in build/gst.
void try_load_plugin_from_build_tree() {
  if (factory_exists("broadcastsink")) return;
  gchar *exe = g_file_read_link("/proc/self/exe", nullptr);
  if (!exe) return;
  gchar *dir = g_path_get_dirname(exe);
  gchar *candidate = g_build_filename(dir, "..", "gst", nullptr);
  if (g_file_test(candidate, G_FILE_TEST_IS_DIR)) {
    GST_INFO("broadcastsink not registered, scanning %s", candidate);
    gst_registry_scan_path(gst_registry_get(), candidate);
  }
  g_free(candidate);
  g_free(dir);
  g_free(exe);
}

// ---------------------------------------------------------------------------
// Encoder selection and pipeline description
// ---------------------------------------------------------------------------

struct EncoderChoice {
  std::string factory;
  Codec codec = Codec::H264;
  bool hardware = false;
  bool forced = false;  // --encoder: never fall back
};

const char *const kH264Preference[] = {"v4l2h264enc", "nvv4l2h264enc", "vaapih264enc", "x264enc"};

bool choose_encoder(const Options &opt, EncoderChoice *out) {
  Codec requested = Codec::H264;
  if (opt.codec && !parse_codec(opt.codec, &requested)) {
    g_printerr("Unknown --codec '%s' (expected h264, vp8 or vp9)\n", opt.codec);
    return false;
  }

  if (opt.encoder) {
    if (!valid_element_name(opt.encoder)) {
      g_printerr("Invalid --encoder name '%s'\n", opt.encoder);
      return false;
    }
    if (!factory_exists(opt.encoder)) {
      g_printerr("Encoder element '%s' is not available (check gst-inspect-1.0 %s)\n", opt.encoder,
                 opt.encoder);
      return false;
    }
    Codec produced;
    if (!factory_codec(opt.encoder, &produced)) {
      g_printerr("Encoder '%s' does not produce H.264, VP8 or VP9\n", opt.encoder);
      return false;
    }
    if (opt.codec && produced != requested) {
      g_printerr("--encoder %s produces %s but --codec %s was requested\n", opt.encoder,
                 codec_name(produced), codec_name(requested));
      return false;
    }
    out->factory = opt.encoder;
    out->codec = produced;
    out->hardware = factory_is_hardware(out->factory);
    out->forced = true;
    return true;
  }

  out->codec = requested;
  out->forced = false;
  switch (requested) {
    case Codec::H264:
      for (const char *name : kH264Preference) {
        if (factory_exists(name)) {
          out->factory = name;
          out->hardware = factory_is_hardware(name);
          return true;
        }
      }
      g_printerr("No H.264 encoder found (tried v4l2h264enc, nvv4l2h264enc, vaapih264enc, x264enc).\n"
                 "Install gstreamer1.0-plugins-ugly for x264enc, or use --codec vp8.\n");
      return false;
    case Codec::VP8:
    case Codec::VP9: {
      const char *name = requested == Codec::VP8 ? "vp8enc" : "vp9enc";
      if (!factory_exists(name)) {
        g_printerr("%s not found (install gstreamer1.0-plugins-good)\n", name);
        return false;
      }
      out->factory = name;
      out->hardware = false;
      return true;
    }
  }
  return false;
}

// Layer 0 keeps the plain names (venc, video): one encoder and the default
// layer are the same thing to broadcastsink and to this tool's probes.
std::string layer_name(const char *base, size_t layer) {
  return layer == 0 ? std::string(base) : std::string(base) + "_" + std::to_string(layer);
}

size_t encoder_count(const Options &opt) { return opt.layers.empty() ? 1 : opt.layers.size(); }

// Raw video source, ending in raw video/x-raw at the given size and --fps.
std::string video_source_description(const Options &opt, int width, int height) {
  gchar *caps = g_strdup_printf("video/x-raw,width=%d,height=%d,framerate=%d/1", width, height, opt.fps);
  std::string d;
  if (opt.device) {
    d = std::string("v4l2src name=") + kVideoSourceName + " device=" + launch_quote(opt.device) +
        " ! decodebin ! videoconvert ! videoscale ! videorate ! " + caps;
  } else if (factory_exists("clockoverlay")) {
    d = std::string("videotestsrc name=") + kVideoSourceName + " is-live=true pattern=" +
        (opt.pattern ? opt.pattern : "smpte") + " ! " + caps +
        " ! clockoverlay time-format=\"%H:%M:%S\" font-desc=\"Sans 36\" shaded-background=true";
  } else {
    d = std::string("videotestsrc name=") + kVideoSourceName + " is-live=true pattern=" +
        (opt.pattern ? opt.pattern : "ball") + " ! " + caps;
  }
  g_free(caps);
  return d;
}

// Conversion + encoder + output caps. Input: raw video at the size to encode.
// A layer in a codec of its own gets that codec's software encoder: the
// hardware of a Pi or a Jetson encodes H.264 only.
EncoderChoice layer_encoder(const EncoderChoice &main, const Layer &layer) {
  if (!layer.own_codec || Codec(layer.codec) == main.codec) return main;
  EncoderChoice enc;
  enc.codec = Codec(layer.codec);
  enc.factory = enc.codec == Codec::H264 ? "x264enc" : enc.codec == Codec::VP8 ? "vp8enc" : "vp9enc";
  return enc;
}

std::string encoder_description(const EncoderChoice &enc, int kbps, int gop, const std::string &name) {
  const int bps = kbps * 1000;
  const char *n = name.c_str();
  gchar *s = nullptr;
  const std::string &f = enc.factory;

  if (f == "x264enc") {
    s = g_strdup_printf("videoconvert ! x264enc name=%s tune=zerolatency speed-preset=ultrafast "
                        "bitrate=%d key-int-max=%d ! video/x-h264,profile=constrained-baseline",
                        n, kbps, gop);
  } else if (f == "v4l2h264enc") {
    s = g_strdup_printf("videoconvert ! video/x-raw,format=I420 ! v4l2h264enc name=%s "
                        "extra-controls=\"controls,video_bitrate=%d,h264_i_frame_period=%d,"
                        "repeat_sequence_header=1\" ! video/x-h264,level=(string)4",
                        n, bps, gop);
  } else if (f == "nvv4l2h264enc") {
    s = g_strdup_printf("nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! nvv4l2h264enc name=%s "
                        "bitrate=%d insert-sps-pps=1 idrinterval=%d iframeinterval=%d "
                        "control-rate=1 maxperf-enable=1",
                        n, bps, gop, gop);
  } else if (f == "vaapih264enc") {
    s = g_strdup_printf("videoconvert ! vaapih264enc name=%s rate-control=cbr bitrate=%d "
                        "keyframe-period=%d",
                        n, kbps, gop);
  } else if (f == "vp8enc") {
    s = g_strdup_printf("videoconvert ! vp8enc name=%s deadline=1 cpu-used=8 end-usage=cbr "
                        "target-bitrate=%d keyframe-max-dist=%d error-resilient=partitions "
                        "lag-in-frames=0",
                        n, bps, gop);
  } else if (f == "vp9enc") {
    s = g_strdup_printf("videoconvert ! vp9enc name=%s deadline=1 cpu-used=8 end-usage=cbr "
                        "target-bitrate=%d keyframe-max-dist=%d lag-in-frames=0 row-mt=true",
                        n, bps, gop);
  } else {
    // An encoder we have no recipe for (--encoder): defaults only.
    s = g_strdup_printf("videoconvert ! %s name=%s", f.c_str(), n);
  }
  std::string d = s;
  g_free(s);
  return d;
}

// Audio in 10 ms buffers: a live source's buffer leaves only once its last
// sample is in, and a browser holds the video as long as the audio was late
// against its capture time, to keep them in sync. With the default 1024
// samples (21 ms), Chromium held the video 50-65 ms; with 480, 22-37 ms
// (bench/av-delay.sh, docs/SCALING.md). Opus frames stay 20 ms: 10 ms frames
// would double the audio packets every viewer costs.
std::string audio_description() {
  return "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 samplesperbuffer=480 ! audioconvert ! "
         "audioresample ! "
         "audio/x-raw,rate=48000 ! queue ! opusenc bitrate=64000 ! " +
         std::string(kSinkName) + ".audio";
}

std::string strip(const std::string &s) {
  const char *ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

std::string format_uptime(gint64 us) {
  guint64 secs = us > 0 ? static_cast<guint64>(us / G_USEC_PER_SEC) : 0;
  gchar *s = g_strdup_printf("%" G_GUINT64_FORMAT ":%02u:%02u", secs / 3600,
                             static_cast<unsigned>((secs / 60) % 60), static_cast<unsigned>(secs % 60));
  std::string r = s;
  g_free(s);
  return r;
}

std::string format_bitrate(double bits_per_second) {
  gchar *s = bits_per_second >= 1e6 ? g_strdup_printf("%.2f Mbps", bits_per_second / 1e6)
                                    : g_strdup_printf("%.0f kbps", bits_per_second / 1e3);
  std::string r = s;
  g_free(s);
  return r;
}

// ASCII only (g_format_size uses a no-break space, which shows up as '?'
// on non-UTF-8 terminals).
std::string format_bytes(guint64 bytes) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1000.0 && u + 1 < G_N_ELEMENTS(units)) {
    v /= 1000.0;
    ++u;
  }
  gchar *s = u == 0 ? g_strdup_printf("%" G_GUINT64_FORMAT " B", bytes) : g_strdup_printf("%.1f %s", v, units[u]);
  std::string r = s;
  g_free(s);
  return r;
}

// URL host for the announcement: wildcard addresses become 127.0.0.1.
std::string url_host(const char *address) {
  GInetAddress *ia = g_inet_address_new_from_string(address);
  std::string host = address;
  if (ia) {
    if (g_inet_address_get_is_any(ia)) {
      host = "127.0.0.1";
    } else if (g_inet_address_get_family(ia) == G_SOCKET_FAMILY_IPV6) {
      host = "[" + host + "]";
    }
    g_object_unref(ia);
  } else if (!*address) {
    host = "127.0.0.1";
  }
  return host;
}

// ---------------------------------------------------------------------------
// Application state
// ---------------------------------------------------------------------------

struct App;

// A read-only string property that an element notifies from its own threads
// (relaysrc's upstream-state, broadcastsink's push-state); each change is
// printed as an event line from the main loop.
struct StateWatch {
  App *app = nullptr;
  const char *label = "";
  std::string shown;  // last value printed: a change is printed once
};

struct App {
  Options *opt = nullptr;
  GMainLoop *loop = nullptr;
  GstElement *pipeline = nullptr;
  GstElement *sink = nullptr;   // owned ref to broadcastsink
  GstElement *relay = nullptr;  // owned ref to relaysrc (relay and ingest modes)
  bool have_encoder = false;    // false with --pipeline, relay and ingest
  EncoderChoice enc;
  bool fallback_used = false;
  bool restarting = false;
  bool announced = false;
  bool stopping = false;
  int exit_code = 0;
  gint encoders_started = 0;  // atomic: encoders that have produced output
  guint startup_timeout_id = 0;
  guint eos_timeout_id = 0;
  bool tty = false;
  bool json_log = false;  // --log-format json: one JSON object per event on stdout, nothing else
  std::map<std::string, std::string> viewer_addresses;  // by viewer id, for viewer-left
  StateWatch upstream_watch;
  StateWatch push_watch;
  // status
  gint64 start_us = 0;
  guint64 last_bytes = 0;
  gint64 last_sample_us = 0;
  guint ticks = 0;
  std::string status_line;  // last status shown on the TTY
  guint64 total_bytes = 0;
};

bool start_pipeline(App *app);
void teardown_pipeline(App *app);

// Property access that tolerates a plugin older or newer than this tool.
GParamSpec *find_property(GstElement *element, const char *name) {
  return element ? g_object_class_find_property(G_OBJECT_GET_CLASS(element), name) : nullptr;
}

bool has_property_of_type(GstElement *element, const char *name, GType type) {
  GParamSpec *ps = find_property(element, name);
  return ps && ps->value_type == type;
}

bool settable(GstElement *element, const char *name) {
  if (find_property(element, name)) return true;
  g_printerr("warning: %s has no '%s' property, ignored\n",
             gst_plugin_feature_get_name(GST_PLUGIN_FEATURE(gst_element_get_factory(element))), name);
  return false;
}

void set_uint(GstElement *element, const char *name, guint value) {
  if (settable(element, name)) g_object_set(element, name, value, nullptr);
}

void set_string(GstElement *element, const char *name, const char *value) {
  if (value && settable(element, name)) g_object_set(element, name, value, nullptr);
}

bool read_uint(GstElement *element, const char *name, guint *out) {
  if (!has_property_of_type(element, name, G_TYPE_UINT)) return false;
  g_object_get(element, name, out, nullptr);
  return true;
}

bool read_uint64(GstElement *element, const char *name, guint64 *out) {
  if (!has_property_of_type(element, name, G_TYPE_UINT64)) return false;
  g_object_get(element, name, out, nullptr);
  return true;
}

bool read_string(GstElement *element, const char *name, std::string *out) {
  if (!has_property_of_type(element, name, G_TYPE_STRING)) return false;
  gchar *value = nullptr;
  g_object_get(element, name, &value, nullptr);
  *out = value ? value : "";
  g_free(value);
  return true;
}

// One event as one line of JSON (--log-format json): its time, its name,
// then its fields; text fields first, then numbers.
using TextFields = std::vector<std::pair<const char *, std::string>>;
using NumberFields = std::vector<std::pair<const char *, gint64>>;
void log_json(const char *event, const TextFields &texts, const NumberFields &numbers = {}) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  GDateTime *now = g_date_time_new_now_utc();
  gchar *time = g_date_time_format_iso8601(now);
  g_date_time_unref(now);
  json_builder_set_member_name(b, "time");
  json_builder_add_string_value(b, time);
  g_free(time);
  json_builder_set_member_name(b, "event");
  json_builder_add_string_value(b, event);
  for (const auto &t : texts) {
    json_builder_set_member_name(b, t.first);
    json_builder_add_string_value(b, t.second.c_str());
  }
  for (const auto &n : numbers) {
    json_builder_set_member_name(b, n.first);
    json_builder_add_int_value(b, n.second);
  }
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gchar *text = json_generator_to_data(gen, nullptr);
  g_print("%s\n", text);
  fflush(stdout);
  g_free(text);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
}

// A line for people, or the same as an event of its own with --log-format json.
void say(App *app, const char *event, const std::string &text);

// Print a user-facing event line without mangling the live TTY status line.
void print_event(App *app, const std::string &line) {
  gint64 up = app->start_us ? g_get_monotonic_time() - app->start_us : 0;
  if (app->tty && !app->status_line.empty()) {
    g_print("\r\x1b[K[%s] %s\n%s", format_uptime(up).c_str(), line.c_str(), app->status_line.c_str());
  } else {
    g_print("[%s] %s\n", format_uptime(up).c_str(), line.c_str());
  }
}

void say(App *app, const char *event, const std::string &text) {
  if (app->json_log) log_json(event, {{"message", text}});
  else g_print("%s\n", text.c_str());
}

void clear_status_line(App *app) {
  if (app->tty && !app->status_line.empty()) {
    g_print("\r\x1b[K");
    app->status_line.clear();
  }
}

// ---------------------------------------------------------------------------
// broadcastsink signals (may fire on any thread: hop to the main loop)
// ---------------------------------------------------------------------------

struct ViewerEvent {
  App *app;
  bool joined;
  std::string id;
  std::string reason;   // for viewer-left
  std::string address;  // for viewer-joined: where its media goes, when known
};

gboolean viewer_event_idle(gpointer data) {
  auto *ev = static_cast<ViewerEvent *>(data);
  App *app = ev->app;
  guint viewers = 0;
  const bool counted = read_uint(app->sink, "viewer-count", &viewers);
  if (app->json_log) {
    std::string address = ev->address;
    if (ev->joined) app->viewer_addresses[ev->id] = address;
    else if (app->viewer_addresses.count(ev->id)) {
      address = app->viewer_addresses[ev->id];
      app->viewer_addresses.erase(ev->id);
    }
    TextFields texts = {{"id", ev->id}, {"address", address}};
    if (!ev->joined) texts.emplace_back("reason", ev->reason);
    log_json(ev->joined ? "viewer-joined" : "viewer-left", texts, {{"viewers", counted ? gint64(viewers) : -1}});
    return G_SOURCE_REMOVE;
  }
  std::string line = std::string(ev->joined ? "viewer joined: " : "viewer left: ") + ev->id;
  if (!ev->joined && !ev->reason.empty()) line += ", reason: " + ev->reason;
  if (counted) line += " (viewers: " + std::to_string(viewers) + ")";
  print_event(app, line);
  return G_SOURCE_REMOVE;
}

void post_viewer_event(ViewerEvent *ev) {
  g_idle_add_full(G_PRIORITY_DEFAULT, viewer_event_idle, ev,
                  [](gpointer p) { delete static_cast<ViewerEvent *>(p); });
}

void on_viewer_joined(GstElement *sink, const gchar *id, gpointer user_data) {
  GST_DEBUG("viewer-joined %s", id);
  auto *ev = new ViewerEvent{static_cast<App *>(user_data), true, id ? id : "?", "", ""};
  // Read now: by the time the main loop runs, the viewer may be gone.
  GstStructure *stats = nullptr;
  if (id) g_signal_emit_by_name(sink, "get-viewer-stats", id, &stats);
  const gchar *address = stats ? gst_structure_get_string(stats, "remote-address") : nullptr;
  if (address) ev->address = address;
  if (stats) gst_structure_free(stats);
  post_viewer_event(ev);
}

void on_viewer_left(GstElement *, const gchar *id, const gchar *reason, gpointer user_data) {
  GST_DEBUG("viewer-left %s (%s)", id, reason);
  post_viewer_event(new ViewerEvent{static_cast<App *>(user_data), false, id ? id : "?", reason ? reason : "", ""});
}

// ---------------------------------------------------------------------------
// Upstream and push state, relay pads (from the elements' threads too)
// ---------------------------------------------------------------------------

struct StateChange {
  StateWatch *watch;
  std::string value;
  std::string detail;
};

gboolean state_change_idle(gpointer data) {
  auto *change = static_cast<StateChange *>(data);
  StateWatch *watch = change->watch;
  // Stopping ends the upstream and the push on purpose: nothing to report.
  if (change->value != watch->shown && !watch->app->stopping) {
    watch->shown = change->value;
    if (watch->app->json_log) {
      const std::string event = std::string(watch->label) + "-state";
      log_json(event.c_str(), {{"state", change->value}, {"detail", change->detail}});
      return G_SOURCE_REMOVE;
    }
    std::string line = std::string(watch->label) + ": " + change->value;
    if (!change->detail.empty()) line += " (" + change->detail + ")";
    print_event(watch->app, line);
  }
  return G_SOURCE_REMOVE;
}

// The value is read on the notifying thread: read later from the main loop,
// quick successive changes (connecting, then live) would show as one.
void on_state_notify(GstObject *, GstObject *changed, GParamSpec *pspec, gpointer user_data) {
  if (!GST_IS_ELEMENT(changed)) return;
  GstElement *element = GST_ELEMENT(changed);
  auto *change = new StateChange{static_cast<StateWatch *>(user_data), "", ""};
  read_string(element, pspec->name, &change->value);
  // Redirects may have led elsewhere than --from: say where it is live.
  if (change->value == "live") read_string(element, "upstream-url", &change->detail);
  GST_DEBUG_OBJECT(element, "%s: %s", pspec->name, change->value.c_str());
  g_idle_add_full(G_PRIORITY_DEFAULT, state_change_idle, change,
                  [](gpointer p) { delete static_cast<StateChange *>(p); });
}

// Watched on the pipeline (deep-notify) rather than on the element: a bin that
// proxies a child's property (broadcastsink's push-state is its
// viewermanager's) may leave the notification to the child.
void watch_state(App *app, GstElement *element, const char *property, StateWatch *watch) {
  if (!has_property_of_type(element, property, G_TYPE_STRING)) return;
  gchar *signal = g_strconcat("deep-notify::", property, nullptr);
  g_signal_connect(app->pipeline, signal, G_CALLBACK(on_state_notify), watch);
  g_free(signal);
}

// relaysrc adds a pad per medium when the first upstream session brings it:
// only then is broadcastsink asked for the pad of the same name, so an
// upstream without audio leaves broadcastsink without an audio input.
void on_relay_pad_added(GstElement *relay, GstPad *pad, gpointer user_data) {
  auto *app = static_cast<App *>(user_data);
  const gchar *medium = GST_PAD_NAME(pad);
  GST_INFO_OBJECT(relay, "new %s pad, linking it to broadcastsink", medium);
  GstElement *queue = gst_element_factory_make("queue", nullptr);
  gst_bin_add(GST_BIN(app->pipeline), queue);
  GstPad *sink_pad = gst_element_request_pad_simple(app->sink, medium);
  GstPad *queue_sink = gst_element_get_static_pad(queue, "sink");
  bool linked = sink_pad && gst_element_link_pads(queue, "src", app->sink, GST_PAD_NAME(sink_pad)) &&
                gst_element_sync_state_with_parent(queue) &&
                GST_PAD_LINK_SUCCESSFUL(gst_pad_link(pad, queue_sink));
  gst_object_unref(queue_sink);
  if (sink_pad) gst_object_unref(sink_pad);
  if (!linked) {
    GST_ELEMENT_ERROR(relay, CORE, PAD, ("Could not link the upstream's %s to broadcastsink", medium),
                      (nullptr));
  }
}

// ---------------------------------------------------------------------------
// Encoder pad probes
// ---------------------------------------------------------------------------

GstPadProbeReturn first_buffer_probe(GstPad *pad, GstPadProbeInfo *, gpointer user_data) {
  auto *app = static_cast<App *>(user_data);
  g_atomic_int_inc(&app->encoders_started);
  GST_INFO_OBJECT(pad, "encoder produced its first output");
  return GST_PAD_PROBE_REMOVE;
}

// broadcastsink asks for keyframes with upstream GstForceKeyUnit events.
// GstVideoEncoder-based software encoders honour them; encoders that only
// offer a "force-IDR" action signal (nvv4l2h264enc) get it emitted here.
GstPadProbeReturn keyframe_request_probe(GstPad *pad, GstPadProbeInfo *info, gpointer) {
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (!event || GST_EVENT_TYPE(event) != GST_EVENT_CUSTOM_UPSTREAM) return GST_PAD_PROBE_OK;
  const GstStructure *s = gst_event_get_structure(event);
  if (!s || !gst_structure_has_name(s, "GstForceKeyUnit")) return GST_PAD_PROBE_OK;

  GstElement *enc = gst_pad_get_parent_element(pad);
  if (!enc) return GST_PAD_PROBE_OK;
  if (g_signal_lookup("force-IDR", G_OBJECT_TYPE(enc)) != 0) {
    GST_DEBUG_OBJECT(enc, "keyframe request: emitting force-IDR");
    g_signal_emit_by_name(enc, "force-IDR");
  } else {
    GST_DEBUG_OBJECT(enc, "keyframe request: force-key-unit event passed to the encoder");
  }
  gst_object_unref(enc);
  return GST_PAD_PROBE_OK;
}

// ---------------------------------------------------------------------------
// Fallback from a hardware encoder to x264enc
// ---------------------------------------------------------------------------

// Until every layer's encoder has produced output: one that started does
// not prove that the next can (the layers share one hardware encoder).
bool can_fall_back(App *app) {
  return app->have_encoder && app->enc.hardware && !app->enc.forced && !app->fallback_used &&
         app->enc.codec == Codec::H264 &&
         static_cast<size_t>(g_atomic_int_get(&app->encoders_started)) < encoder_count(*app->opt) &&
         !app->stopping;
}

gboolean restart_with_software_idle(gpointer data) {
  auto *app = static_cast<App *>(data);
  teardown_pipeline(app);
  app->fallback_used = true;
  app->restarting = false;
  app->enc.factory = "x264enc";
  app->enc.hardware = false;
  if (!factory_exists("x264enc")) {
    g_printerr("x264enc is not available either (install gstreamer1.0-plugins-ugly)\n");
    app->exit_code = 1;
    g_main_loop_quit(app->loop);
    return G_SOURCE_REMOVE;
  }
  say(app, "encoder", "encoder: x264enc (software)");
  if (!start_pipeline(app)) {
    app->exit_code = 1;
    g_main_loop_quit(app->loop);
  }
  return G_SOURCE_REMOVE;
}

void fall_back(App *app, const char *why) {
  if (app->restarting) return;
  app->restarting = true;
  clear_status_line(app);
  say(app, "encoder-fallback",
      "encoder: " + app->enc.factory + " (hardware) failed to start: " + why +
          "\n         falling back to software encoding (once)");
  g_idle_add(restart_with_software_idle, app);
}

gboolean startup_timeout_cb(gpointer data) {
  auto *app = static_cast<App *>(data);
  app->startup_timeout_id = 0;
  if (can_fall_back(app)) {
    gchar *why = g_strdup_printf("no encoded output after %u s", kStartupTimeoutSeconds);
    fall_back(app, why);
    g_free(why);
  }
  return G_SOURCE_REMOVE;
}

// True for errors the software encoder would not fix: the sink (HTTP port,
// ...) or the camera device itself.
bool error_is_not_encoder_related(App *app, GstMessage *msg, GError *err) {
  GstObject *src = GST_MESSAGE_SRC(msg);
  if (app->sink && (src == GST_OBJECT(app->sink) || gst_object_has_as_ancestor(src, GST_OBJECT(app->sink))))
    return true;
  if (src && GST_IS_ELEMENT(src) && !g_strcmp0(GST_OBJECT_NAME(src), kVideoSourceName) &&
      err->domain == GST_RESOURCE_ERROR)
    return true;
  return false;
}

// ---------------------------------------------------------------------------
// Bus, status and signals
// ---------------------------------------------------------------------------

gboolean bus_cb(GstBus *, GstMessage *msg, gpointer data) {
  auto *app = static_cast<App *>(data);
  if (app->restarting) return G_SOURCE_CONTINUE;

  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error(msg, &err, &dbg);
      if (can_fall_back(app) && !error_is_not_encoder_related(app, msg, err)) {
        GST_WARNING("error before first encoded frame: %s (%s)", err->message, dbg ? dbg : "");
        fall_back(app, err->message);
      } else {
        clear_status_line(app);
        if (app->json_log)
          log_json("error", {{"source", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))}, {"message", err->message},
                             {"debug", dbg ? dbg : ""}});
        g_printerr("ERROR from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
        g_printerr("Debug info: %s\n", dbg ? dbg : "none");
        app->exit_code = 1;
        g_main_loop_quit(app->loop);
      }
      g_clear_error(&err);
      g_free(dbg);
      break;
    }
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_warning(msg, &err, &dbg);
      clear_status_line(app);
      if (app->json_log)
        log_json("warning", {{"source", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))}, {"message", err->message}});
      g_printerr("WARNING from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
      GST_DEBUG("warning debug info: %s", dbg ? dbg : "none");
      g_clear_error(&err);
      g_free(dbg);
      break;
    }
    case GST_MESSAGE_EOS:
      clear_status_line(app);
      if (!app->stopping) {
        if (app->json_log) log_json("end-of-stream", {});
        else g_print("End of stream.\n");
      }
      g_main_loop_quit(app->loop);
      break;
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC(msg) == GST_OBJECT(app->pipeline)) {
        GstState old_state, new_state;
        gst_message_parse_state_changed(msg, &old_state, &new_state, nullptr);
        GST_DEBUG("pipeline %s -> %s", gst_element_state_get_name(old_state),
                  gst_element_state_get_name(new_state));
        if (new_state == GST_STATE_PLAYING && app->start_us == 0) {
          app->start_us = g_get_monotonic_time();
          app->last_sample_us = app->start_us;
        }
      }
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

gboolean status_tick(gpointer data) {
  auto *app = static_cast<App *>(data);
  if (!app->announced || app->stopping || app->restarting || !app->sink) return G_SOURCE_CONTINUE;
  app->ticks++;
  if (!app->tty && app->ticks % kPlainStatusEverySeconds != 0) return G_SOURCE_CONTINUE;

  gint64 now = g_get_monotonic_time();
  if (app->start_us == 0) {
    app->start_us = now;
    app->last_sample_us = now;
  }
  guint viewers = 0;
  bool have_viewers = read_uint(app->sink, "viewer-count", &viewers);
  guint64 bytes = 0;
  bool have_bytes = read_uint64(app->sink, "bytes-sent", &bytes);

  double bps = 0.0;
  if (have_bytes) {
    if (bytes < app->last_bytes) app->last_bytes = bytes;  // sink was recreated
    gint64 dt = now - app->last_sample_us;
    if (dt > 0) bps = static_cast<double>(bytes - app->last_bytes) * 8.0 * G_USEC_PER_SEC / dt;
    app->last_bytes = bytes;
    app->total_bytes = bytes;
  }
  app->last_sample_us = now;

  if (app->json_log) {
    TextFields texts;
    NumberFields numbers = {{"uptime_s", (now - app->start_us) / G_USEC_PER_SEC},
                            {"viewers", have_viewers ? gint64(viewers) : -1},
                            {"out_bps", gint64(bps)},
                            {"bytes_sent", gint64(bytes)}};
    std::string state;
    if (read_string(app->relay, "upstream-state", &state)) texts.emplace_back("upstream", state);
    if (app->opt->push && read_string(app->sink, "push-state", &state)) texts.emplace_back("push", state);
    guint children = 0;
    if (read_uint(app->sink, "children", &children)) numbers.emplace_back("relays", children);
    guint64 kf_requests = 0;
    if (read_uint64(app->sink, "keyframe-requests", &kf_requests)) numbers.emplace_back("keyframe_requests", gint64(kf_requests));
    log_json("status", texts, numbers);
    return G_SOURCE_CONTINUE;
  }
  std::string line = "[" + format_uptime(now - app->start_us) + "] ";
  std::string upstream;
  if (read_string(app->relay, "upstream-state", &upstream)) {
    line += std::string(app->upstream_watch.label) + ": " + upstream;
    guint reconnects = 0;
    if (read_uint(app->relay, "reconnects", &reconnects) && reconnects > 0)
      line += " (reconnects: " + std::to_string(reconnects) + ")";
    line += "  ";
  }
  line += "viewers: ";
  line += have_viewers ? std::to_string(viewers) : "n/a";
  if (have_viewers && app->opt->max_viewers > 0) line += "/" + std::to_string(app->opt->max_viewers);
  // Only when there are any: the line must fit a terminal.
  guint children = 0;
  if (read_uint(app->sink, "children", &children) && children > 0)
    line += "  relays: " + std::to_string(children);
  std::string push;
  if (app->opt->push && read_string(app->sink, "push-state", &push)) line += "  push: " + push;
  line += "  out: " + (have_bytes ? format_bitrate(bps) : std::string("n/a"));
  if (have_bytes) line += "  sent: " + format_bytes(bytes);
  guint64 kf_requests = 0;
  if (read_uint64(app->sink, "keyframe-requests", &kf_requests))
    line += "  keyframe requests: " + std::to_string(kf_requests);

  if (app->tty) {
    app->status_line = line;
    g_print("\r\x1b[K%s", line.c_str());
  } else {
    g_print("%s\n", line.c_str());
  }
  return G_SOURCE_CONTINUE;
}

gboolean eos_timeout_cb(gpointer data) {
  auto *app = static_cast<App *>(data);
  app->eos_timeout_id = 0;
  GST_INFO("no EOS after %u s, stopping anyway", kEosTimeoutSeconds);
  g_main_loop_quit(app->loop);
  return G_SOURCE_REMOVE;
}

// relaysrc has no pads until a first upstream (or publisher) came: with no
// stream to end, EOS would never come back.
bool nothing_to_drain(App *app) {
  if (!app->pipeline) return true;
  if (!app->relay) return false;
  GST_OBJECT_LOCK(app->relay);
  bool no_pads = app->relay->numsrcpads == 0;
  GST_OBJECT_UNLOCK(app->relay);
  return no_pads;
}

gboolean on_unix_signal(gpointer data) {
  auto *app = static_cast<App *>(data);
  if (app->stopping || nothing_to_drain(app) || app->restarting) {
    g_main_loop_quit(app->loop);  // second Ctrl-C, or nothing to drain
    return G_SOURCE_CONTINUE;
  }
  app->stopping = true;
  clear_status_line(app);
  say(app, "stopping", app->json_log ? "stopping" : "\nStopping...");
  gst_element_send_event(app->pipeline, gst_event_new_eos());
  app->eos_timeout_id = g_timeout_add_seconds(kEosTimeoutSeconds, eos_timeout_cb, app);
  return G_SOURCE_CONTINUE;
}

// ---------------------------------------------------------------------------
// Pipeline lifecycle
// ---------------------------------------------------------------------------

std::string build_description(App *app) {
  const Options &opt = *app->opt;
  // relaysrc has no pads until the upstream's media arrives: on_relay_pad_added links them.
  if (opt.mode != Mode::Broadcast)
    return std::string("relaysrc name=") + kRelaySrcName + "  broadcastsink name=" + kSinkName;
  std::string d = std::string("broadcastsink name=") + kSinkName + "  ";
  const std::string video_pad = std::string(kSinkName) + "." + kVideoPadName;
  if (opt.pipeline) {
    d += strip(opt.pipeline) + " ! " + video_pad;
  } else if (opt.layers.empty()) {
    // Leaky queue so a slow encoder drops raw frames instead of building latency.
    d += video_source_description(opt, opt.width, opt.height) +
         " ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 leaky=downstream ! " +
         encoder_description(app->enc, opt.bitrate, opt.gop(), kEncoderName) + " ! " + video_pad;
  } else {
    // Captured once, at the first (largest) layer's size. One keyframe
    // interval for all: the layers' periodic keyframes fall on the same
    // frames, as long as no layer's queue drops one.
    d += video_source_description(opt, opt.layers[0].width, opt.layers[0].height) + " ! tee name=" +
         kVideoTeeName;
    for (size_t i = 0; i < opt.layers.size(); ++i) {
      const Layer &l = opt.layers[i];
      gchar *branch = g_strdup_printf("  %s. ! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 "
                                      "max-size-time=0 ! videoscale ! video/x-raw,width=%d,height=%d ! ",
                                      kVideoTeeName, l.width, l.height);
      d += branch;
      g_free(branch);
      d += encoder_description(layer_encoder(app->enc, l), l.kbps, opt.gop(), layer_name(kEncoderName, i)) + " ! " +
           kSinkName + "." + layer_name(kVideoPadName, i);
    }
  }
  if (!opt.no_audio) d += "  " + audio_description();
  return d;
}

std::string http_base(const Options &opt, const char *address, int port) {
  return std::string(opt.scheme()) + "://" + url_host(address) + ":" + std::to_string(port);
}

// What a relay tells its upstream, which may send viewers there when full.
std::string advertise_url(const Options &opt) {
  if (opt.advertise_url) return opt.advertise_url;
  if (opt.port == 0) return "";
  return http_base(opt, opt.listen_address(), opt.port) + "/whep";
}

void configure_relay(App *app) {
  const Options &opt = *app->opt;
  GstElement *relay = app->relay;
  if (opt.mode == Mode::Relay) {
    set_string(relay, "location", opt.from);
    set_string(relay, "advertise-url", advertise_url(opt).c_str());
    set_string(relay, "tls-ca", opt.tls_ca);
  } else {
    set_uint(relay, "whip-port", static_cast<guint>(opt.whip_port));
    set_string(relay, "whip-address", opt.whip_listen_address());
    set_string(relay, "tls-certificate", opt.tls_cert);
    set_string(relay, "tls-key", opt.tls_key);
  }
  set_string(relay, "token", opt.token);
  set_string(relay, "node-id", opt.node_id);
  set_string(relay, "stun-server", opt.stun_server);
  set_string(relay, "turn-servers", opt.turn_servers);
  set_string(relay, "ice-address", opt.ice_address);
  if (opt.latency >= 0) set_uint(relay, "latency", static_cast<guint>(opt.latency));
  if (opt.upstream_timeout >= 0) set_uint(relay, "upstream-timeout", static_cast<guint>(opt.upstream_timeout));
}

void announce(App *app) {
  if (app->announced) return;
  app->announced = true;
  const Options &opt = *app->opt;
  std::string base, page, metrics_url, dashboard;
  if (opt.port != 0) {
    base = http_base(opt, opt.listen_address(), opt.port);
    // The token rides in the fragment, which the page reads and no browser sends to a server.
    page = base + "/" + (opt.viewer_token ? std::string("#token=") + opt.viewer_token : "");
    gchar *metrics = nullptr;
    g_object_get(app->sink, "metrics-path", &metrics, nullptr);
    if (metrics && *metrics) {
      metrics_url = base + metrics;
      dashboard = base + "/dashboard" + (opt.metrics_token ? std::string("#token=") + opt.metrics_token : "");
    }
    g_free(metrics);
  }
  const std::string whip =
      opt.mode == Mode::Ingest ? http_base(opt, opt.whip_listen_address(), opt.whip_port) + "/whip" : "";
  if (app->json_log) {
    log_json("started", {{"mode", mode_name(opt.mode)},
                         {"page", page},
                         {"whep", base.empty() ? "" : base + "/whep"},
                         {"metrics", metrics_url},
                         {"dashboard", dashboard},
                         {"whip", whip},
                         {"from", opt.from ? opt.from : ""},
                         {"push", opt.push ? opt.push : ""}});
    return;
  }
  if (opt.mode == Mode::Relay) g_print("Relaying %s\n", opt.from);
  if (opt.mode == Mode::Ingest)
    g_print("WHIP ingest at %s%s\n", whip.c_str(), opt.token && *opt.token ? "  (publishers must send the token)" : "");
  const char *verb = opt.mode == Mode::Broadcast ? "Broadcasting" : "Serving viewers";
  if (opt.port == 0) {
    g_print("%s (HTTP server disabled: --port 0)\n", verb);
  } else {
    g_print("%s at %s  (WHEP endpoint: %s/whep)\n", verb, page.c_str(), base.c_str());
    if (!metrics_url.empty()) {
      g_print("Prometheus metrics at %s%s\n", metrics_url.c_str(),
              opt.metrics_token ? "  (scrapers must send the token)" : "");
      g_print("Dashboard at %s\n", dashboard.c_str());
    }
  }
  if (opt.push) g_print("Pushing to %s\n", opt.push);
  g_print("Press Ctrl-C to stop.\n");
}

bool start_pipeline(App *app) {
  const Options &opt = *app->opt;
  std::string desc = build_description(app);
  GST_INFO("launch: %s", desc.c_str());

  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch_full(desc.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &err);
  if (!pipeline || err) {
    if (can_fall_back(app)) {
      // e.g. the encoder exists but its companion elements (nvvidconv) do not
      std::string why = err ? err->message : "could not build the pipeline";
      g_clear_error(&err);
      if (pipeline) gst_object_unref(pipeline);
      fall_back(app, why.c_str());
      return true;
    }
    g_printerr("Could not build the pipeline: %s\n", err ? err->message : "unknown error");
    if (opt.pipeline) g_printerr("(check the --pipeline description)\n");
    g_clear_error(&err);
    if (pipeline) gst_object_unref(pipeline);
    return false;
  }
  app->pipeline = pipeline;
  app->sink = gst_bin_get_by_name(GST_BIN(pipeline), kSinkName);
  if (!app->sink) {
    g_printerr("broadcastsink '%s' missing from the pipeline\n", kSinkName);
    return false;
  }
  g_atomic_int_set(&app->encoders_started, 0);

  set_uint(app->sink, "port", static_cast<guint>(opt.port));
  set_string(app->sink, "address", opt.listen_address());
  set_uint(app->sink, "max-viewers", static_cast<guint>(opt.max_viewers));
  const std::pair<const char *, gint> limits[] = {
      {"max-pending-viewers", opt.max_pending},         {"max-pending-webrtcbin", opt.max_pending_webrtcbin},
      {"offers-per-second", opt.offers_per_second},     {"http-request-timeout", opt.http_timeout},
      {"max-http-connections", opt.max_http_connections}, {"sender-threads", opt.sender_threads},
      {"ice-lite-port", opt.ice_port}};
  for (const auto &limit : limits)
    if (limit.second >= 0) set_uint(app->sink, limit.first, static_cast<guint>(limit.second));
  if (opt.sender_report_time) gst_util_set_object_arg(G_OBJECT(app->sink), "sender-report-time", opt.sender_report_time);
  if (opt.start_kbps >= 0) set_uint(app->sink, "start-bitrate", static_cast<guint>(opt.start_kbps) * 1000);
  set_string(app->sink, "stun-server", opt.stun_server);
  set_string(app->sink, "turn-servers", opt.turn_servers);
  set_string(app->sink, "ice-address", opt.ice_address);
  set_string(app->sink, "push-url", opt.push);
  set_string(app->sink, "push-token", opt.push_token);
  set_string(app->sink, "viewer-token", opt.viewer_token);
  if (opt.metrics) set_string(app->sink, "metrics-path", g_str_equal(opt.metrics, "none") ? "" : opt.metrics);
  set_string(app->sink, "metrics-token", opt.metrics_token);
  set_string(app->sink, "tls-certificate", opt.tls_cert);
  set_string(app->sink, "tls-key", opt.tls_key);
  set_string(app->sink, "tls-ca", opt.tls_ca);
  if (opt.push) watch_state(app, app->sink, "push-state", &app->push_watch);

  if (opt.mode != Mode::Broadcast) {
    app->relay = gst_bin_get_by_name(GST_BIN(pipeline), kRelaySrcName);
    configure_relay(app);
    watch_state(app, app->relay, "upstream-state", &app->upstream_watch);
    g_signal_connect(app->relay, "pad-added", G_CALLBACK(on_relay_pad_added), app);
  }

  if (g_signal_lookup("viewer-joined", G_OBJECT_TYPE(app->sink)))
    g_signal_connect(app->sink, "viewer-joined", G_CALLBACK(on_viewer_joined), app);
  if (g_signal_lookup("viewer-left", G_OBJECT_TYPE(app->sink)))
    g_signal_connect(app->sink, "viewer-left", G_CALLBACK(on_viewer_left), app);

  for (size_t i = 0; app->have_encoder && i < encoder_count(opt); ++i) {
    GstElement *enc = gst_bin_get_by_name(GST_BIN(pipeline), layer_name(kEncoderName, i).c_str());
    if (!enc) continue;
    GstPad *src = gst_element_get_static_pad(enc, "src");
    if (src) {
      gst_pad_add_probe(src, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                        first_buffer_probe, app, nullptr);
      gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, keyframe_request_probe, app, nullptr);
      gst_object_unref(src);
    }
    gst_object_unref(enc);
  }

  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, bus_cb, app);

  GstStateChangeReturn ret = gst_element_set_state(pipeline, GST_STATE_PLAYING);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    // The reason is on the bus; take it before the watch sees it.
    std::string reason = "state change failed";
    std::string debug;
    bool sink_error = false;
    GError *perr = nullptr;
    while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      if (!perr) {
        gchar *dbg = nullptr;
        gst_message_parse_error(m, &perr, &dbg);
        reason = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(m))) + ": " + perr->message;
        debug = dbg ? dbg : "";
        sink_error = error_is_not_encoder_related(app, m, perr);
        g_free(dbg);
      }
      gst_message_unref(m);
    }
    gst_object_unref(bus);
    if (!sink_error && can_fall_back(app)) {
      g_clear_error(&perr);
      fall_back(app, reason.c_str());
      return true;
    }
    g_printerr("ERROR: could not start the pipeline: %s\n", reason.c_str());
    if (!debug.empty()) g_printerr("Debug info: %s\n", debug.c_str());
    g_clear_error(&perr);
    return false;
  }
  gst_object_unref(bus);

  if (can_fall_back(app))
    app->startup_timeout_id = g_timeout_add_seconds(kStartupTimeoutSeconds, startup_timeout_cb, app);

  announce(app);
  return true;
}

void teardown_pipeline(App *app) {
  if (app->startup_timeout_id) {
    g_source_remove(app->startup_timeout_id);
    app->startup_timeout_id = 0;
  }
  if (!app->pipeline) return;
  GstBus *bus = gst_element_get_bus(app->pipeline);
  gst_bus_remove_watch(bus);
  gst_object_unref(bus);
  if (app->sink) g_signal_handlers_disconnect_by_data(app->sink, app);
  if (app->relay) g_signal_handlers_disconnect_by_data(app->relay, app);
  g_signal_handlers_disconnect_by_data(app->pipeline, &app->upstream_watch);
  g_signal_handlers_disconnect_by_data(app->pipeline, &app->push_watch);
  gst_element_set_state(app->pipeline, GST_STATE_NULL);
  if (app->sink) {
    gst_object_unref(app->sink);
    app->sink = nullptr;
  }
  if (app->relay) {
    gst_object_unref(app->relay);
    app->relay = nullptr;
  }
  gst_object_unref(app->pipeline);
  app->pipeline = nullptr;
}

// The nicks of videotestsrc's patterns; none without it.
std::vector<std::string> test_patterns() {
  std::vector<std::string> names;
  GstElement *src = gst_element_factory_make("videotestsrc", nullptr);
  if (!src) return names;
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(src), "pattern");
  if (spec && G_IS_PARAM_SPEC_ENUM(spec)) {
    GEnumClass *patterns = G_PARAM_SPEC_ENUM(spec)->enum_class;
    for (guint i = 0; i < patterns->n_values; ++i) names.push_back(patterns->values[i].value_nick);
  }
  gst_object_unref(src);
  return names;
}

// Digits only (no sign, no spaces); a number too long for a gint is
// G_MAXINT, for the range checks to refuse.
bool parse_decimal(const std::string &s, gint *out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = s.size() > 9 ? G_MAXINT : static_cast<gint>(std::stol(s));
  return true;
}

// --layers WxH@KBPS,...: each item is held to --width's, --height's and
// --bitrate's limits; the first one refused is named.
bool parse_layers(const char *spec, std::vector<Layer> *out) {
  std::vector<std::string> items;
  const std::string all = spec;
  for (size_t from = 0;;) {
    const size_t comma = all.find(',', from);
    items.push_back(all.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  if (items.size() > kMaxLayers) {
    g_printerr("--layers: %zu layers given, at most %zu\n", items.size(), kMaxLayers);
    return false;
  }
  for (const std::string &item : items) {
    const char *it = item.c_str();
    const size_t x = item.find('x'), at = item.find('@'), colon = item.find(':');
    Layer l;
    if (x == std::string::npos || at == std::string::npos || at < x || !parse_decimal(item.substr(0, x), &l.width) ||
        !parse_decimal(item.substr(x + 1, at - x - 1), &l.height) ||
        !parse_decimal(item.substr(at + 1, colon == std::string::npos ? std::string::npos : colon - at - 1),
                       &l.kbps)) {
      g_printerr("--layers: '%s' is not WIDTHxHEIGHT@KBPS[:CODEC], e.g. 1280x720@2500 or 640x360@800:vp8\n", it);
      return false;
    }
    if (colon != std::string::npos) {
      Codec codec;
      if (!parse_codec(item.substr(colon + 1).c_str(), &codec)) {
        g_printerr("--layers: '%s': the codec must be h264, vp8 or vp9\n", it);
        return false;
      }
      l.own_codec = true;
      l.codec = int(codec);
    }
    if (l.width < 16 || l.width > 7680 || l.height < 16 || l.height > 4320) {
      g_printerr("--layers: '%s': width must be between 16 and 7680, height between 16 and 4320\n", it);
      return false;
    }
    // 4:2:0 encoders work on 2x2 blocks of pixels.
    if (l.width % 2 || l.height % 2) {
      g_printerr("--layers: '%s': width and height must be even\n", it);
      return false;
    }
    if (l.kbps < 1 || l.kbps > 100000) {
      g_printerr("--layers: '%s': bitrate must be between 1 and 100000 kbps\n", it);
      return false;
    }
    if (!out->empty() && (l.width > out->front().width || l.height > out->front().height)) {
      g_printerr("--layers: '%s' is larger than the first layer (%dx%d), the size the source is captured at: "
                 "put the largest first\n",
                 it, out->front().width, out->front().height);
      return false;
    }
    out->push_back(l);
  }
  return true;
}

// Checks the options, and parses --layers into opt.layers.
bool validate(Options &opt) {
  bool ok = true;
  auto fail = [&ok](const char *msg) {
    g_printerr("%s\n", msg);
    ok = false;
  };
  if (opt.port < 0 || opt.port > 65535) fail("--port must be between 0 and 65535");
  if (opt.bitrate <= 0 || opt.bitrate > 100000) fail("--bitrate must be between 1 and 100000 kbps");
  if (opt.width < 16 || opt.width > 7680) fail("--width must be between 16 and 7680");
  if (opt.height < 16 || opt.height > 4320) fail("--height must be between 16 and 4320");
  if (opt.fps < 1 || opt.fps > 240) fail("--fps must be between 1 and 240");
  if (opt.keyframe_interval < 0) fail("--keyframe-interval must be >= 0");
  if (opt.max_viewers < 0) fail("--max-viewers must be >= 0");
  if (opt.max_pending < -1 || opt.max_pending_webrtcbin < -1 || opt.offers_per_second < -1 ||
      opt.max_http_connections < -1)
    fail("--max-pending, --max-pending-webrtcbin, --offers-per-second and --max-http-connections must be >= 0");
  if (opt.http_timeout < -1 || opt.http_timeout > 3600) fail("--http-timeout must be between 0 and 3600");
  if (opt.sender_threads < -1 || opt.sender_threads > 256) fail("--sender-threads must be between 0 and 256");
  if (opt.start_kbps < -1 || opt.start_kbps > 4000000) fail("--start-bitrate must be between 0 and 4000000 (kbps)");
  if (opt.ice_port < -1 || opt.ice_port > 65535) fail("--ice-port must be between 0 and 65535");
  if (opt.sender_report_time && g_strcmp0(opt.sender_report_time, "capture") != 0 &&
      g_strcmp0(opt.sender_report_time, "send") != 0 && g_strcmp0(opt.sender_report_time, "picture-first") != 0)
    fail("--sender-report-time must be picture-first, capture or send");
  if (opt.device && opt.pipeline) fail("--device and --pipeline cannot be used together");
  if (opt.pattern && (opt.device || opt.pipeline)) fail("--pattern is for the test source: not with --device or --pipeline");
  if (opt.pattern) {
    const std::vector<std::string> known = test_patterns();
    if (std::find(known.begin(), known.end(), opt.pattern) == known.end()) {
      std::string list;
      for (const auto &name : known) list += (list.empty() ? "" : ", ") + name;
      g_printerr("--pattern: '%s' is not one of videotestsrc's patterns: %s\n", opt.pattern, list.c_str());
      ok = false;
    }
  }
  if (opt.pipeline && strip(opt.pipeline).empty()) fail("--pipeline is empty");
  if (opt.layers_spec && opt.pipeline) fail("--layers and --pipeline cannot be used together");
  if (opt.layers_spec && opt.mode == Mode::Broadcast && !parse_layers(opt.layers_spec, &opt.layers)) ok = false;

  // An option of another mode would be silently ignored: refuse it.
  const Options defaults;
  auto not_in_this_mode = [&](bool given, const char *option) {
    if (!given) return;
    g_printerr("%s cannot be used in %s mode\n", option, mode_name(opt.mode));
    ok = false;
  };
  if (opt.mode != Mode::Broadcast) {
    not_in_this_mode(opt.device, "--device");
    not_in_this_mode(opt.pattern, "--pattern");
    not_in_this_mode(opt.pipeline, "--pipeline");
    not_in_this_mode(opt.codec, "--codec");
    not_in_this_mode(opt.encoder, "--encoder");
    not_in_this_mode(opt.layers_spec, "--layers");
    not_in_this_mode(opt.bitrate != defaults.bitrate, "--bitrate");
    not_in_this_mode(opt.width != defaults.width, "--width");
    not_in_this_mode(opt.height != defaults.height, "--height");
    not_in_this_mode(opt.fps != defaults.fps, "--fps");
    not_in_this_mode(opt.keyframe_interval != defaults.keyframe_interval, "--keyframe-interval");
    not_in_this_mode(opt.no_audio, "--no-audio");
  } else {
    not_in_this_mode(opt.token, "--token");
    not_in_this_mode(opt.node_id, "--node-id");
    not_in_this_mode(opt.latency != defaults.latency, "--latency");
    not_in_this_mode(opt.upstream_timeout != defaults.upstream_timeout, "--upstream-timeout");
  }
  if (opt.mode != Mode::Relay) {
    not_in_this_mode(opt.from, "--from");
    not_in_this_mode(opt.advertise_url, "--advertise-url");
  }
  if (opt.mode != Mode::Ingest) {
    not_in_this_mode(opt.whip_port != defaults.whip_port, "--whip-port");
    not_in_this_mode(opt.whip_address, "--whip-address");
  }

  auto is_http_url = [](const char *s) { return g_str_has_prefix(s, "http://") || g_str_has_prefix(s, "https://"); };
  if (opt.mode == Mode::Relay && !opt.from) fail("relay needs --from URL, the upstream's WHEP endpoint");
  if (opt.from && !is_http_url(opt.from)) fail("--from must be an http:// or https:// URL");
  if (opt.mode == Mode::Ingest) {
    if (opt.whip_port < 1 || opt.whip_port > 65535) fail("ingest needs --whip-port between 1 and 65535");
    else if (opt.whip_port == opt.port) fail("--whip-port and --port must differ");
  }
  if (opt.push && !is_http_url(opt.push)) fail("--push must be an http:// or https:// URL");
  if (opt.push_token && !opt.push) fail("--push-token needs --push");
  if (opt.log_format && !g_str_equal(opt.log_format, "text") && !g_str_equal(opt.log_format, "json"))
    fail("--log-format must be text or json");
  if (!opt.tls_cert != !opt.tls_key) fail("--tls-cert and --tls-key go together");
  return ok;
}

void announce_layer(App *app, size_t i) {
  const Options &opt = *app->opt;
  const Layer &l = opt.layers[i];
  const std::string encoder = layer_name(kEncoderName, i), pad = layer_name(kVideoPadName, i);
  const EncoderChoice enc = layer_encoder(app->enc, l);
  if (app->json_log) {
    log_json("layer", {{"encoder", encoder}, {"pad", pad}, {"codec", codec_name(enc.codec)}, {"factory", enc.factory}},
             {{"layer", gint64(i)}, {"width", l.width}, {"height", l.height}, {"fps", opt.fps}, {"kbps", l.kbps}});
    return;
  }
  g_print("layer %zu: %dx%d@%d, %d kbps, %s by %s (%s) -> %s\n", i, l.width, l.height, opt.fps, l.kbps,
          codec_name(enc.codec), enc.factory.c_str(), encoder.c_str(), pad.c_str());
}

// Broadcast mode: the encoder, and whether there can be audio.
bool prepare_broadcast(App *app) {
  Options *opt = app->opt;
  if (!opt->no_audio && !factory_exists("opusenc")) {
    g_printerr("warning: opusenc not found (gstreamer1.0-plugins-base), continuing without audio\n");
    opt->no_audio = TRUE;
  }

  if (opt->pipeline) {
    if (opt->codec || opt->encoder)
      g_printerr("warning: --codec/--encoder are ignored with --pipeline\n");
    app->have_encoder = false;
    say(app, "encoder", "encoder: from --pipeline");
  } else {
    if (!choose_encoder(*opt, &app->enc)) return false;
    app->have_encoder = true;
    say(app, "encoder", "encoder: " + app->enc.factory + (app->enc.hardware ? " (hardware)" : " (software)"));
    if (app->enc.forced && app->enc.factory != "x264enc" && app->enc.factory != "v4l2h264enc" &&
        app->enc.factory != "nvv4l2h264enc" && app->enc.factory != "vaapih264enc" &&
        app->enc.factory != "vp8enc" && app->enc.factory != "vp9enc")
      say(app, "encoder", "note: no settings known for " + app->enc.factory + ", " +
                              (opt->layers.empty() ? "--bitrate" : "the layers' bitrates") +
                              " and --keyframe-interval are not applied");
    if (opt->layers.empty()) {
      GST_INFO("video %dx%d@%d, %s %d kbps, keyframe every %d frames", opt->width, opt->height, opt->fps,
               codec_name(app->enc.codec), opt->bitrate, opt->gop());
    } else {
      const Options defaults;
      if (opt->width != defaults.width || opt->height != defaults.height || opt->bitrate != defaults.bitrate)
        g_printerr("warning: --width/--height/--bitrate are ignored with --layers\n");
      for (size_t i = 0; i < opt->layers.size(); ++i) {
        const EncoderChoice enc = layer_encoder(app->enc, opt->layers[i]);
        if (!factory_exists(enc.factory.c_str())) {
          g_printerr("--layers: layer %zu needs %s, which is not available (gstreamer1.0-plugins-%s)\n", i,
                     enc.factory.c_str(), enc.factory == "x264enc" ? "ugly" : "good");
          return false;
        }
        announce_layer(app, i);
      }
    }
  }
  return true;
}

// GLib before 2.76 (Debian 12 has 2.74) serves small blocks (GStreamer's
// events, GObjects) from its own slab allocator, GSlice, which never gives
// memory back: after a burst of 1,500 pending viewers a node kept about
// 6 MB more than with malloc, which the node trims once a burst has gone
// (docs/soak.md). GSlice reads G_SLICE before main() runs, so the tool runs
// itself again with G_SLICE=always-malloc, unless G_SLICE is set already
// (an explicit choice is kept). glibc's arenas and per-thread caches keep
// another 4-5 MB after such a burst; the settings that return it
// (GLIBC_TUNABLES, docs/security.md) cost CPU per viewer, so they are the
// operator's choice, not set here.
void use_malloc_for_small_blocks(char **argv) {
  if (!glib_check_version(2, 76, 0) || getenv("G_SLICE")) return;
  setenv("G_SLICE", "always-malloc", 1);
  execv("/proc/self/exe", argv);
  // Could not run itself again: go on with GSlice; only memory differs.
}

}  // namespace

int main(int argc, char **argv) {
  use_malloc_for_small_blocks(argv);
  setlocale(LC_ALL, "");
  Options opt;
  const GOptionEntry entries[] = {
      {"device", 'd', 0, G_OPTION_ARG_FILENAME, &opt.device,
       "Capture from this V4L2 camera instead of the test pattern (e.g. /dev/video0); MJPEG or raw "
       "output is decoded and scaled to --width/--height/--fps (default: test pattern)",
       "DEVICE"},
      {"pattern", 0, 0, G_OPTION_ARG_STRING, &opt.pattern,
       "The test source's picture: one of videotestsrc's patterns, e.g. snow (noise: fills any bitrate, "
       "to test against a picture as demanding as a camera's), ball, smpte (default: smpte with a clock)",
       "NAME"},
      {"pipeline", 0, 0, G_OPTION_ARG_STRING, &opt.pipeline,
       "Your own video branch as a gst-launch description ending in an encoder, e.g. "
       "\"videotestsrc is-live=true ! x264enc tune=zerolatency\"; it is linked to broadcastsink's "
       "video pad as-is, and --codec/--encoder/--bitrate/--width/--height/--fps/--keyframe-interval "
       "are ignored (default: none)",
       "LAUNCH-LINE"},
      {"codec", 'c', 0, G_OPTION_ARG_STRING, &opt.codec, "Video codec: h264, vp8 or vp9 (default: h264)",
       "CODEC"},
      {"encoder", 'e', 0, G_OPTION_ARG_STRING, &opt.encoder,
       "Force this encoder element, e.g. x264enc, v4l2h264enc, nvv4l2h264enc, vaapih264enc, vp8enc, "
       "vp9enc; no software fallback (default: automatic, hardware first)",
       "NAME"},
      {"bitrate", 'b', 0, G_OPTION_ARG_INT, &opt.bitrate, "Video bitrate in kbit/s (default: 800)", "KBPS"},
      {"width", 0, 0, G_OPTION_ARG_INT, &opt.width, "Video width in pixels (default: 640)", "PIXELS"},
      {"height", 0, 0, G_OPTION_ARG_INT, &opt.height, "Video height in pixels (default: 360)", "PIXELS"},
      {"fps", 0, 0, G_OPTION_ARG_INT, &opt.fps, "Frames per second (default: 30)", "FPS"},
      {"layers", 0, 0, G_OPTION_ARG_STRING, &opt.layers_spec,
       "Simulcast: encode the source once per layer, 1 to 4 comma-separated WIDTHxHEIGHT@KBPS (even sizes), "
       "largest first, e.g. 1280x720@2500,640x360@800,320x180@200; the source is captured once at the first "
       "layer's size. A layer may name a codec of its own, WIDTHxHEIGHT@KBPS:vp8, encoded "
       "in software: browsers that cannot decode the others' (Firefox without OpenH264 and H.264) get it. "
       "Overrides --width, --height and --bitrate (default: one layer, from those)",
       "LAYERS"},
      {"start-bitrate", 0, 0, G_OPTION_ARG_INT, &opt.start_kbps,
       "With --layers: new viewers start on the best layer of at most this many kbps and are moved up when "
       "their link carries more (seconds later); 0 = on the first layer (default: 1000)",
       "KBPS"},
      {"keyframe-interval", 'k', 0, G_OPTION_ARG_INT, &opt.keyframe_interval,
       "Keyframe interval (GOP length) in frames (default: 2 seconds' worth, i.e. 2 x --fps)", "FRAMES"},
      {"no-audio", 0, 0, G_OPTION_ARG_NONE, &opt.no_audio,
       "Do not send audio (default: a 440 Hz Opus test tone is sent)", nullptr},
      {"port", 'p', 0, G_OPTION_ARG_INT, &opt.port,
       "HTTP port for the viewer page (GET /) and WHEP (POST /whep); 0 disables the HTTP server "
       "(default: 8080)",
       "PORT"},
      {"address", 'a', 0, G_OPTION_ARG_STRING, &opt.address,
       "Local address the HTTP server listens on (default: 0.0.0.0, all interfaces)", "ADDRESS"},
      {"max-viewers", 'm', 0, G_OPTION_ARG_INT, &opt.max_viewers,
       "Maximum number of simultaneous viewers, 0 = unlimited (default: 0)", "N"},
      {"max-pending", 0, 0, G_OPTION_ARG_INT, &opt.max_pending,
       "Most viewers connecting at once (offer answered, transport not connected yet); further offers "
       "get 503, 0 = unlimited (default: 200)",
       "N"},
      {"max-pending-webrtcbin", 0, 0, G_OPTION_ARG_INT, &opt.max_pending_webrtcbin,
       "Of those, most with a webrtcbin of their own (offers the shared ICE-lite port cannot serve), "
       "0 = unlimited (default: 8)",
       "N"},
      {"sender-threads", 0, 0, G_OPTION_ARG_INT, &opt.sender_threads,
       "Threads that send viewers' media, each with its own share of the viewers, 0 = one per core "
       "this process may use (default: 0)",
       "N"},
      {"sender-report-time", 0, 0, G_OPTION_ARG_STRING, &opt.sender_report_time,
       "What the RTCP sender reports that browsers sync audio and video by stand for: picture-first "
       "(capture time, but sound that arrives later than its picture is reported that much later, up to "
       "45 ms: the picture is never held for its sound, which plays that much behind it), capture (exact "
       "lip sync, the browser holds the picture until its sound arrives) or send (each stream on time "
       "whatever its encoder's delay) (default: picture-first)",
       "picture-first|capture|send"},
      {"offers-per-second", 0, 0, G_OPTION_ARG_INT, &opt.offers_per_second,
       "Offers per second taken from one IP address (bursts of twice that); further ones get 429, "
       "0 = unlimited (default: 20)",
       "N"},
      {"http-timeout", 0, 0, G_OPTION_ARG_INT, &opt.http_timeout,
       "Seconds an HTTP client has to send its whole request before its connection is closed, "
       "0 = no limit (default: 10)",
       "SECONDS"},
      {"max-http-connections", 0, 0, G_OPTION_ARG_INT, &opt.max_http_connections,
       "Most HTTP connections open at once; further ones are closed, 0 = unlimited (default: 1024)", "N"},
      {"stun-server", 0, 0, G_OPTION_ARG_STRING, &opt.stun_server,
       "STUN server for viewers' ICE, stun://host:port, e.g. stun://stun.l.google.com:19302 "
       "(default: none)",
       "URI"},
      {"turn-servers", 0, 0, G_OPTION_ARG_STRING, &opt.turn_servers,
       "Comma-separated TURN servers, turn(s)://user:pass@host:port (default: none)", "URIS"},
      {"ice-address", 0, 0, G_OPTION_ARG_STRING, &opt.ice_address,
       "Comma-separated local IP addresses offered as ICE candidates; loopback addresses are only "
       "used when listed (default: all non-loopback interfaces)",
       "ADDRS"},
      {"ice-port", 0, 0, G_OPTION_ARG_INT, &opt.ice_port,
       "Port that every viewer's media leaves from (the shared ICE-lite port, on each --ice-address): the one "
       "port to open in a firewall, UDP and TCP (ICE-TCP, for viewers whose networks block UDP), 0 = one the "
       "system picks at each start (default: 0)",
       "PORT"},
      {"from", 0, 0, G_OPTION_ARG_STRING, &opt.from,
       "relay: the upstream's WHEP endpoint, e.g. http://root:8080/whep (another gst-broadcast or any "
       "WHEP server; 307 redirects are followed). Required in relay mode",
       "URL"},
      {"advertise-url", 0, 0, G_OPTION_ARG_STRING, &opt.advertise_url,
       "relay: this node's own WHEP URL, told to the upstream so that it can send viewers here when "
       "it is full (default: http://ADDRESS:PORT/whep, with 127.0.0.1 for 0.0.0.0; set it when "
       "viewers come from other machines)",
       "URL"},
      {"whip-port", 0, 0, G_OPTION_ARG_INT, &opt.whip_port,
       "ingest: TCP port of the WHIP endpoint (POST /whip) for one publisher at a time. Required in "
       "ingest mode, must differ from --port",
       "PORT"},
      {"whip-address", 0, 0, G_OPTION_ARG_STRING, &opt.whip_address,
       "ingest: local address the WHIP endpoint listens on (default: --address, else 0.0.0.0)", "ADDRESS"},
      {"token", 0, 0, G_OPTION_ARG_STRING, &opt.token,
       "relay: sent to the upstream as Authorization: Bearer; ingest: publishers must send it, "
       "else 401 (default: none)",
       "TOKEN"},
      {"node-id", 0, 0, G_OPTION_ARG_STRING, &opt.node_id,
       "relay, ingest: identity of this node in a relay tree, used to refuse loops (default: random)",
       "ID"},
      {"latency", 0, 0, G_OPTION_ARG_INT, &opt.latency,
       "relay, ingest: most time the upstream jitter buffer waits for a missing packet, in ms "
       "(default: relaysrc's, see gst-inspect-1.0 relaysrc)",
       "MS"},
      {"upstream-timeout", 0, 0, G_OPTION_ARG_INT, &opt.upstream_timeout,
       "relay, ingest: silence after which the upstream counts as lost (a relay then reconnects), "
       "in ms (default: relaysrc's, see gst-inspect-1.0 relaysrc)",
       "MS"},
      {"push", 0, 0, G_OPTION_ARG_STRING, &opt.push,
       "Also push the stream, as it is, to this WHIP endpoint, e.g. http://ingest:8090/whip of a "
       "gst-broadcast in ingest mode or any WHIP server; reconnects for as long as it runs "
       "(default: none)",
       "URL"},
      {"viewer-token", 0, 0, G_OPTION_ARG_STRING, &opt.viewer_token,
       "Only viewers sending Authorization: Bearer TOKEN may watch (401 otherwise); share the page as "
       "http(s)://HOST:PORT/#token=TOKEN (default: anyone may watch)",
       "TOKEN"},
      {"log-format", 0, 0, G_OPTION_ARG_STRING, &opt.log_format,
       "text, or json: one JSON object per line on stdout for each event (started, viewer-joined and "
       "viewer-left with id, address and reason, upstream-state, push-state, publisher-state, status every "
       "5 s, warning, error, end-of-stream) and nothing else (default: text)",
       "FORMAT"},
      {"metrics", 0, 0, G_OPTION_ARG_STRING, &opt.metrics,
       "Serve Prometheus metrics at this path on --port, the same numbers as JSON at /stats and a live dashboard "
       "at /dashboard; none turns all three off (default: /metrics)", "PATH"},
      {"metrics-token", 0, 0, G_OPTION_ARG_STRING, &opt.metrics_token,
       "Readers of --metrics and /stats must send Authorization: Bearer TOKEN, 401 otherwise; open the dashboard "
       "as /dashboard#token=TOKEN (default: none)", "TOKEN"},
      {"push-token", 0, 0, G_OPTION_ARG_STRING, &opt.push_token,
       "Sent with --push as Authorization: Bearer (default: none)", "TOKEN"},
      {"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &opt.tls_cert,
       "PEM file of this node's certificate (leaf first, then intermediates, e.g. certbot's fullchain.pem): "
       "the viewer page, WHEP and the ingest's WHIP endpoint are served over HTTPS only (default: plain HTTP)",
       "FILE"},
      {"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &opt.tls_key,
       "PEM file of --tls-cert's private key (e.g. certbot's privkey.pem)", "FILE"},
      {"tls-ca", 0, 0, G_OPTION_ARG_FILENAME, &opt.tls_ca,
       "PEM file of the certificate authorities that https:// --from and --push URLs, and relay children's "
       "https:// URLs (polled for their load), must chain to, instead of the system's (default: the system's)",
       "FILE"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};

  GOptionContext *ctx = g_option_context_new("[relay|ingest] - broadcast live video to browsers over WebRTC");
  g_option_context_set_summary(
      ctx,
      "Without options, broadcasts a moving test pattern (640x360@30) and a 440 Hz tone on port 8080.\n"
      "Open the printed URL in a browser, or point a WHEP player at the /whep endpoint.\n"
      "\n"
      "Modes (the first argument):\n"
      "  (none)  broadcast: encode a source once and serve it to every viewer\n"
      "  relay   pull a broadcast from an upstream WHEP endpoint (--from) and serve it again, as it\n"
      "          is: one upstream session feeds all of this node's viewers; reconnects with backoff,\n"
      "          and the viewers keep their sessions across upstream restarts\n"
      "  ingest  take a broadcast from one WHIP publisher (--whip-port), e.g. OBS, a browser or\n"
      "          gst-broadcast --push, and serve it, as it is (WHIP in, WHEP out)\n"
      "--device, --pipeline, --codec, --encoder, --bitrate, --width, --height, --fps, --layers,\n"
      "--keyframe-interval, --no-audio and --pattern are for broadcasting only. --push works in every mode.");
  g_option_context_set_description(
      ctx,
      "H.264 encoder selection (first one available is used):\n"
      "  v4l2h264enc    hardware, e.g. Raspberry Pi (no on-demand keyframes before GStreamer 1.24:\n"
      "                 relies on the keyframe interval)\n"
      "  nvv4l2h264enc  hardware, NVIDIA Jetson (keyframe requests mapped to its force-IDR signal)\n"
      "  vaapih264enc   hardware, Intel/AMD VA-API\n"
      "  x264enc        software, constrained-baseline profile\n"
      "If a hardware encoder exists but fails to start, the broadcast restarts once with x264enc.\n"
      "\n"
      "Examples:\n"
      "  gst-broadcast\n"
      "  gst-broadcast --device /dev/video0 --width 1280 --height 720 --bitrate 2000\n"
      "  gst-broadcast --codec vp8 --no-audio --port 9000\n"
      "  gst-broadcast --device /dev/video0 --layers 1280x720@2500,640x360@800,320x180@200\n"
      "  gst-broadcast --pipeline \"videotestsrc is-live=true ! videoconvert ! x264enc tune=zerolatency\"\n"
      "  gst-broadcast relay --from http://root.example.org:8080/whep --port 8081 \\\n"
      "      --advertise-url http://relay1.example.org:8081/whep\n"
      "  gst-broadcast ingest --whip-port 8090 --token s3cret --port 8080\n"
      "  gst-broadcast --port 0 --push http://ingest.example.org:8090/whip --push-token s3cret\n"
      "  gst-broadcast --port 443 --tls-cert /etc/letsencrypt/live/tv.example.org/fullchain.pem \\\n"
      "      --tls-key /etc/letsencrypt/live/tv.example.org/privkey.pem\n"
      "\n"
      "Status line: \"upstream\" (relay) or \"publisher\" (ingest) is idle, connecting, live or\n"
      "lost, with the number of reconnects once there are any; \"relays\" counts the relays pulling\n"
      "from this node, once there are any; \"push\" is the state of --push (the same four).\n"
      "Each change of upstream, publisher or push state is also printed as it happens.\n"
      "\n"
      "Environment:\n"
      "  GST_PLUGIN_PATH  where to find the webrtcbroadcast plugin (e.g. build/gst)\n"
      "  GST_DEBUG        e.g. GST_DEBUG=gst-broadcast:5,broadcastsink:5 for debug logs\n");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  g_option_context_add_group(ctx, gst_init_get_option_group());

  GError *err = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    g_printerr("%s\nTry '%s --help'.\n", err->message, g_get_prgname() ? g_get_prgname() : "gst-broadcast");
    g_clear_error(&err);
    g_option_context_free(ctx);
    return 1;
  }
  g_option_context_free(ctx);
  if (argc > 1) {
    if (!strcmp(argv[1], "relay")) {
      opt.mode = Mode::Relay;
    } else if (!strcmp(argv[1], "ingest")) {
      opt.mode = Mode::Ingest;
    } else {
      g_printerr("Unknown mode '%s' (expected relay or ingest). Try --help.\n", argv[1]);
      return 1;
    }
  }
  if (argc > 2) {
    g_printerr("Unexpected argument '%s'. Try --help.\n", argv[2]);
    return 1;
  }
  gst_init(nullptr, nullptr);
  GST_DEBUG_CATEGORY_INIT(gst_broadcast_debug, "gst-broadcast", 0, "gst-broadcast command-line tool");

  if (!validate(opt)) return 1;

  try_load_plugin_from_build_tree();
  if (!factory_exists("broadcastsink")) {
    g_printerr("The 'broadcastsink' element was not found.\n"
               "Set GST_PLUGIN_PATH to the directory containing libgstwebrtcbroadcast.so "
               "(e.g. build/gst).\n");
    return 1;
  }
  if (opt.mode != Mode::Broadcast && !factory_exists("relaysrc")) {
    g_printerr("The 'relaysrc' element was not found: this webrtcbroadcast plugin cannot relay.\n");
    return 1;
  }
  if (opt.push && !factory_has_property("broadcastsink", "push-url")) {
    g_printerr("--push: this broadcastsink cannot push (it has no 'push-url' property).\n");
    return 1;
  }
  if ((opt.latency != -1 && !in_uint_range("relaysrc", "latency", opt.latency, "--latency")) ||
      (opt.upstream_timeout != -1 &&
       !in_uint_range("relaysrc", "upstream-timeout", opt.upstream_timeout, "--upstream-timeout")))
    return 1;

  App app;
  app.opt = &opt;
  app.json_log = opt.log_format && g_str_equal(opt.log_format, "json");
  // Machines read JSON lines: no live status line rewritten in place.
  app.tty = isatty(STDOUT_FILENO) && !app.json_log;

  app.upstream_watch = {&app, opt.mode == Mode::Ingest ? "publisher" : "upstream", ""};
  app.push_watch = {&app, "push", ""};
  if (opt.mode == Mode::Broadcast && !prepare_broadcast(&app)) return 1;

  app.loop = g_main_loop_new(nullptr, FALSE);
  guint sigint_id = g_unix_signal_add(SIGINT, on_unix_signal, &app);
  guint sigterm_id = g_unix_signal_add(SIGTERM, on_unix_signal, &app);
  guint status_id = g_timeout_add_seconds(1, status_tick, &app);

  if (start_pipeline(&app)) {
    g_main_loop_run(app.loop);
  } else {
    app.exit_code = 1;
  }

  clear_status_line(&app);
  if (app.eos_timeout_id) g_source_remove(app.eos_timeout_id);
  g_source_remove(status_id);
  g_source_remove(sigint_id);
  g_source_remove(sigterm_id);

  if (app.sink && app.start_us) {
    guint64 bytes = 0;
    if (read_uint64(app.sink, "bytes-sent", &bytes)) app.total_bytes = bytes;
  }
  teardown_pipeline(&app);
  if (app.start_us && app.exit_code == 0) {
    if (app.json_log)
      log_json("stopped", {}, {{"uptime_s", (g_get_monotonic_time() - app.start_us) / G_USEC_PER_SEC},
                               {"bytes_sent", gint64(app.total_bytes)}});
    else
      g_print("Stopped after %s, %s sent to viewers.\n",
              format_uptime(g_get_monotonic_time() - app.start_us).c_str(),
              format_bytes(app.total_bytes).c_str());
  }
  g_main_loop_unref(app.loop);
  return app.exit_code;
}
