/**
 * SECTION:element-viewermanager
 * @title: viewermanager
 *
 * Serves one broadcast, given as RTP (already payloaded, for example by
 * broadcastsink or a relay), to many WebRTC viewers. Each viewer is served
 * from one shared UDP port as an ICE-lite peer (see ice-lite; offers the port
 * cannot serve get a webrtcbin of their own), fed by the fan-out: payload
 * type and SSRC rewritten per viewer, delivery gated until a keyframe,
 * keyframe requests coalesced, lost packets resent from one shared history,
 * the sending spread over sender threads (see sender-threads). Viewers join
 * through the built-in WHEP server (`port`) or the `add-viewer` action
 * signal; `get-viewer-stats` reports on one of them.
 */
#include "viewermanager.h"

#include <atomic>
#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/debug.h"
#include "common/strings.h"
#include "fanout/fanout.h"
#include "relaysrc.h"
#include "viewer/audience.h"
#include "viewer/node.h"

GST_DEBUG_CATEGORY_STATIC(gst_viewer_manager_debug);
#define GST_CAT_DEFAULT gst_viewer_manager_debug

using namespace wb;

namespace {

struct MediaInput {
  GstPad *ghost = nullptr;   // owned by the element
  GstElement *queue = nullptr;
  WbFanout *fanout = nullptr;
  bool eos = false;
};

// A further layer of the video (simulcast): its own queue, and thread, into
// its sink pad on the video fan-out.
struct LayerInput {
  GstPad *ghost = nullptr;  // owned by the element
  GstElement *queue = nullptr;
  GstPad *fanout_pad = nullptr;
};

// Defaults of the settings kept here; the audience's are AudienceConfig's
// and HttpLimits' own.
constexpr const char *DEFAULT_PROP_ADDRESS = "0.0.0.0";
constexpr const char *DEFAULT_PROP_METRICS_PATH = "/metrics";
constexpr guint DEFAULT_PROP_KEYFRAME_MIN_INTERVAL = 250;
constexpr ReportTime DEFAULT_PROP_SENDER_REPORT_TIME = ReportTime::PictureFirst;
// A 640x360 layer's rate: what most links carry, so that most viewers are
// one padding probe (seconds) from a top layer above it.
constexpr guint DEFAULT_PROP_START_BITRATE = 1000000;

struct Settings {
  Settings() {
    node.address = DEFAULT_PROP_ADDRESS;
    node.metrics_path = DEFAULT_PROP_METRICS_PATH;
  }
  NodeSettings node;  // read when the element starts
  guint keyframe_min_interval_ms = DEFAULT_PROP_KEYFRAME_MIN_INTERVAL;
  ReportTime report_time = DEFAULT_PROP_SENDER_REPORT_TIME;
  guint start_bitrate = DEFAULT_PROP_START_BITRATE;
};

}  // namespace

// What an input pad's media needs before its queue: nothing for RTP, a
// parser and a payloader for encoded media (the class's input_chain()),
// built at the pad's first caps. Until then the pad has no target and
// answers queries from its template.
struct Front {
  GstPad *end = nullptr;             // the queue's sink pad, where the chain ends
  std::vector<GstElement *> chain;  // references of ours
  std::string media_type;           // caps name the chain was built for
};

struct ViewerManagerPrivate {
  std::mutex lock;
  std::mutex fronts_lock;  // the streaming threads' (caps), and pad requests'
  std::map<GstPad *, Front> fronts;  // by input (ghost) pad
  Settings settings;
  MediaInput video;  // layer 0 and the video fan-out
  MediaInput audio;
  std::array<LayerInput, kMaxLayers> layers;  // 1 and up; [0] unused
  // How late after capture each medium arrives: shared by both fan-outs.
  std::shared_ptr<CaptureDelays> capture_delays = std::make_shared<CaptureDelays>();
  std::unique_ptr<Node> node;
  Pusher::State push_state = Pusher::State::Idle;
  std::string node_id;        // ours, when we are the root
  std::string upstream_path;  // from a relaysrc upstream of us
  std::atomic<bool> stream_start_forwarded{false};
};

// GObject's private data holds a pointer: what it points to has C++
// members with constructors.
struct _GstViewerManagerPrivate {
  ViewerManagerPrivate *impl;
};
typedef struct _GstViewerManagerPrivate GstViewerManagerPrivate;

G_DEFINE_TYPE_WITH_PRIVATE(GstViewerManager, gst_viewer_manager, GST_TYPE_BIN)

static ViewerManagerPrivate *priv_of(GstViewerManager *self) {
  return static_cast<GstViewerManagerPrivate *>(gst_viewer_manager_get_instance_private(self))->impl;
}

// The ids of the signals we emit (the action signals have handlers).
struct ViewerSignalIds {
  guint joined;
  guint left;
  guint authorize;
};
static ViewerSignalIds signals;

static GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE(
    "video", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("application/x-rtp, media=(string)video, encoding-name=(string){ H264, VP8, VP9 }"));
static GstStaticPadTemplate video_layer_template = GST_STATIC_PAD_TEMPLATE(
    "video_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("application/x-rtp, media=(string)video, encoding-name=(string){ H264, VP8, VP9 }"));
static GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE(
    "audio", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("application/x-rtp, media=(string)audio, encoding-name=(string){ OPUS }"));

namespace {

GType sender_report_time_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {int(ReportTime::Capture), "When its first sample was captured: audio and video in exact sync (a browser "
                                 "holds the stream that arrives earlier)", "capture"},
      {int(ReportTime::Send), "When it was sent: nothing held to line the streams up (lower delay; the stream "
                              "with the longer encoding delay, usually audio, plays that much late)", "send"},
      {int(ReportTime::PictureFirst), "When it was captured, but audio that reaches the node later after capture "
                                      "than video is reported that much later (at most 45 ms): the picture is "
                                      "never held for its sound, which plays up to 45 ms behind it; audio that "
                                      "arrives earlier is held for the picture", "picture-first"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstSenderReportTime", values));
  return type;
}

std::vector<GParamSpec *> viewer_param_specs() {
  auto flags = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  std::vector<GParamSpec *> specs(N_VIEWER_PROPERTIES, nullptr);
  const AudienceConfig audience;
  specs[PROP_PORT] = g_param_spec_uint(
      "port", "Port", "TCP port of the built-in WHEP server and viewer page (0 = no server)", 0,
      65535, 0, flags);
  specs[PROP_ADDRESS] = g_param_spec_string(
      "address", "Address", "IP address the WHEP server listens on", DEFAULT_PROP_ADDRESS, flags);
  specs[PROP_MAX_VIEWERS] = g_param_spec_uint(
      "max-viewers", "Max viewers",
      "Most viewers at once; further offers get 503 with Retry-After (0 = unlimited)", 0,
      G_MAXUINT, audience.max_viewers, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_STUN_SERVER] = g_param_spec_string(
      "stun-server", "STUN server", "STUN server for viewers' transports, stun://host:port", nullptr,
      GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_TURN_SERVERS] = g_param_spec_string(
      "turn-servers", "TURN servers",
      "Comma-separated TURN servers for viewers' transports, turn(s)://user:password@host:port",
      nullptr, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_KEYFRAME_MIN_INTERVAL] = g_param_spec_uint(
      "keyframe-min-interval", "Keyframe min interval",
      "Least time between two keyframe requests sent upstream, in milliseconds: joins and "
      "viewers' PLI/FIR within it are coalesced into one request. A new viewer waits at most this long "
      "(plus the encoder's latency) for its first picture; each request costs a keyframe's bitrate",
      0, 60000, DEFAULT_PROP_KEYFRAME_MIN_INTERVAL, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_ICE_ADDRESS] = g_param_spec_string(
      "ice-address", "ICE addresses",
      "Comma-separated local IP addresses offered as ICE candidates (empty = every non-loopback "
      "interface; loopback addresses are only used when listed here)",
      nullptr, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_VIEWER_TIMEOUT] = g_param_spec_uint(
      "viewer-timeout", "Viewer timeout",
      "A viewer whose transport has not connected, or from which nothing was received, for this "
      "many milliseconds is removed",
      1000, 600000, guint(audience.viewer_timeout.count()), GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_ICE_LITE] = g_param_spec_boolean(
      "ice-lite", "ICE-lite",
      "Serve viewers from one shared UDP port (see ice-lite-port) as an ICE-lite peer with our own "
      "DTLS-SRTP: no webrtcbin, socket or thread per viewer, and the fan-out sends every viewer's media. "
      "Offers it cannot serve (media not bundled, RTCP not multiplexed, a fingerprint other than "
      "sha-256) get a webrtcbin of their own, as with ice-lite off. Applies to viewers that join after a change",
      audience.ice_lite, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_ICE_LITE_PORT] = g_param_spec_uint(
      "ice-lite-port", "ICE-lite port",
      "Port number of the shared ICE-lite port, on every ice-address: UDP, and TCP on the same number for "
      "viewers whose networks block UDP (ICE-TCP, a passive candidate) (0 = one the system picks)", 0, 65535,
      audience.ice_lite_port,
      flags);
  specs[PROP_SENDER_THREADS] = g_param_spec_uint(
      "sender-threads", "Sender threads",
      "Threads that protect and send ICE-lite viewers' media (sender shards; viewers are spread over them, "
      "each sends from its own socket on the one ice-lite-port). 0 = one per core this process may use "
      "(its CPU affinity)",
      0, 256, audience.sender_threads, flags);
  specs[PROP_SENDER_REPORT_TIME] = g_param_spec_enum(
      "sender-report-time", "Sender report time",
      "Which instant a packet's RTP time stands for in the RTCP sender reports of ICE-lite viewers, by which "
      "browsers line audio and video up (viewers with a webrtcbin of their own get webrtcbin's reports)",
      sender_report_time_get_type(), int(DEFAULT_PROP_SENDER_REPORT_TIME), GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_START_BITRATE] = g_param_spec_uint(
      "start-bitrate", "Start bitrate",
      "With video layers (simulcast): a new ICE-lite viewer starts on the best layer whose rate (the highest "
      "of its last 5 one-second measures; before its first, what it carried so far) is at most this many "
      "bits/s, and is moved up from there when its link carries more (probed with padding first); nothing is "
      "known of its link before its first reports. 0 = on the first (best) layer. Viewers with a webrtcbin of "
      "their own stay on the first layer",
      0, G_MAXUINT, DEFAULT_PROP_START_BITRATE, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_DIRECT_SEND] = g_param_spec_boolean(
      "direct-send", "Direct send",
      "Viewers with a webrtcbin of their own (see ice-lite): once it has connected, protect (SRTP) and send its media straight from the "
      "fan-out thread on the socket ICE selected, instead of through webrtcbin's per-viewer element "
      "chain; webrtcbin keeps ICE, DTLS and incoming RTCP. Viewers on a relayed (TURN) pair always "
      "go through webrtcbin. Applies to viewers that connect after a change",
      audience.direct_send, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_DIRECT_VIEWERS] = g_param_spec_uint(
      "direct-viewers", "Direct viewers",
      "Viewers (relays included) whose media the fan-out protects and sends itself (see direct-send)",
      0, G_MAXUINT, 0, ro);
  specs[PROP_VIEWER_COUNT] =
      g_param_spec_uint("viewer-count", "Viewer count", "Viewers currently connected or connecting",
                        0, G_MAXUINT, 0, ro);
  specs[PROP_BYTES_SENT] = g_param_spec_uint64(
      "bytes-sent", "Bytes sent", "RTP bytes handed to viewers' transports so far (all viewers)", 0,
      G_MAXUINT64, 0, ro);
  specs[PROP_KEYFRAME_REQUESTS] = g_param_spec_uint64(
      "keyframe-requests", "Keyframe requests",
      "Keyframe requests sent upstream so far (after coalescing)", 0, G_MAXUINT64, 0, ro);
  specs[PROP_RETRANSMISSIONS] = g_param_spec_uint64(
      "retransmissions", "Retransmissions",
      "RTP packets sent again to viewers that reported them lost (RTCP NACK, when the viewer negotiated it), "
      "from each stream's shared history of its last 1024 packets (all viewers)",
      0, G_MAXUINT64, 0, ro);
  specs[PROP_PUSH_URL] = g_param_spec_string(
      "push-url", "WHIP push URL",
      "Also push the broadcast to this WHIP endpoint (a relay in ingest mode, an SFU or CDN); "
      "reconnects with backoff (1 s doubling to 30 s)",
      nullptr, flags);
  specs[PROP_PUSH_TOKEN] = g_param_spec_string(
      "push-token", "WHIP push token", "Bearer token for push-url", nullptr, flags);
  specs[PROP_PUSH_STATE] = g_param_spec_string(
      "push-state", "Push state", "State of the WHIP push: idle, connecting, live or lost (notified on change)",
      "idle", ro);
  specs[PROP_CHILDREN] = g_param_spec_uint(
      "children", "Relay children",
      "Relays pulling from this node that announced their WHEP URL (new viewers are redirected to them "
      "with 307 when max-viewers is reached)",
      0, G_MAXUINT, 0, ro);
  specs[PROP_NODE_PATH] = g_param_spec_string(
      "node-path", "Node path",
      "Node ids from the root of the relay tree down to this node (sent as Broadcast-Path; a node "
      "refuses, with 508, relays from above it)",
      nullptr, ro);
  specs[PROP_MAX_PENDING_VIEWERS] = g_param_spec_uint(
      "max-pending-viewers", "Max pending viewers",
      "Most viewers whose transport has not connected yet (each holds a session until viewer-timeout); "
      "further offers get 503 with Retry-After (0 = unlimited)",
      0, G_MAXUINT, audience.max_pending, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_MAX_PENDING_WEBRTCBIN] = g_param_spec_uint(
      "max-pending-webrtcbin", "Max pending webrtcbin viewers",
      "Of the pending viewers, most with a webrtcbin of their own (offers the ICE-lite port cannot serve, "
      "or ice-lite off; each costs about 8 threads until it connects or times out); further such offers "
      "get 503 with Retry-After (0 = unlimited)",
      0, G_MAXUINT, audience.max_pending_webrtcbin, GParamFlags(flags | GST_PARAM_MUTABLE_PLAYING));
  specs[PROP_OFFERS_PER_SECOND] = g_param_spec_uint(
      "offers-per-second", "Offers per second",
      "Offers (POST) per second the WHEP server takes from one IP address, in bursts of twice that; "
      "further ones get 429 with Retry-After (0 = unlimited)",
      0, G_MAXUINT, HttpLimits::kDefaultOffersPerSecond, flags);
  specs[PROP_HTTP_REQUEST_TIMEOUT] = g_param_spec_uint(
      "http-request-timeout", "HTTP request timeout",
      "Seconds an HTTP client has to send its whole request (headers and body) once connected; "
      "then the connection is closed (0 = no limit)",
      0, 3600, HttpLimits::kDefaultRequestTimeoutS, flags);
  specs[PROP_MAX_HTTP_CONNECTIONS] = g_param_spec_uint(
      "max-http-connections", "Max HTTP connections",
      "Most HTTP connections open at once; further ones are closed at once (0 = unlimited). Every reply "
      "closes its connection", 0, G_MAXUINT, HttpLimits::kDefaultMaxConnections, flags);
  specs[PROP_VIEWER_TOKEN] = g_param_spec_string(
      "viewer-token", "Viewer token",
      "Viewers must send Authorization: Bearer <this> with their offer (POST) and DELETE, else 401 with "
      "WWW-Authenticate; the viewer page takes it from its URL fragment, #token=... (default: anyone may watch). "
      "For tokens of your own (JWT, sessions) connect to the authorize signal instead",
      nullptr, flags);
  specs[PROP_TLS_CERTIFICATE] = g_param_spec_string(
      "tls-certificate", "TLS certificate",
      "PEM file of the server's certificate (leaf first, then the intermediates): with tls-key, the viewer "
      "page and WHEP are served over HTTPS only. Read when the element starts; a file it cannot use fails "
      "the state change",
      nullptr, flags);
  specs[PROP_TLS_KEY] = g_param_spec_string(
      "tls-key", "TLS key", "PEM file of tls-certificate's private key (unencrypted)", nullptr, flags);
  specs[PROP_TLS_CA] = g_param_spec_string(
      "tls-ca", "TLS CA",
      "PEM file of the certificate authorities that the certificates of an https:// push-url and of relay "
      "children's https:// advertise URLs (whose load this node polls, to redirect viewers) must chain to, "
      "instead of the system's (for a private CA). A push certificate that does not verify fails the push "
      "attempt, retried with backoff; a child's makes that child unreachable until one does",
      nullptr, flags);
  specs[PROP_METRICS_PATH] = g_param_spec_string(
      "metrics-path", "Metrics path",
      "Path on the WHEP server's port where GET serves the node's metrics in the Prometheus text format "
      "(viewers, bytes and packets out, keyframe requests, NACK and PLI, answer-time, first-keyframe and "
      "receiver-report histograms, relay children, push and upstream state, per-shard CPU). The same "
      "snapshot is served as JSON at /stats and drawn live by the page at /dashboard; empty: none of the three",
      DEFAULT_PROP_METRICS_PATH, flags);
  specs[PROP_METRICS_TOKEN] = g_param_spec_string(
      "metrics-token", "Metrics token",
      "A scrape of metrics-path or /stats must send Authorization: Bearer <this>, else 401; the dashboard "
      "page takes it from its URL as /dashboard#token=<this> (default: anyone may read them)",
      nullptr, flags);
  return specs;
}

bool emit_authorize(GstElement *element, guint signal_id, const std::string &method, const std::string &path,
                    const std::string &authorization, const std::string &remote_address) {
  if (!g_signal_has_handler_pending(element, signal_id, 0, FALSE)) return true;
  gboolean allow = FALSE;
  g_signal_emit(element, signal_id, 0, method.c_str(), path.c_str(), authorization.c_str(), remote_address.c_str(),
                &allow);
  return allow;
}

ViewerSignalIds install_viewer_signals(GType type, GCallback add_viewer, GCallback remove_viewer,
                                       GCallback get_viewer_stats, GCallback get_stats, GCallback set_viewer_layer) {
  ViewerSignalIds ids;
  /**
   * GstViewerManager::viewer-joined:
   * @id: the viewer's session id
   *
   * A viewer's transport connected and its media starts (from its first keyframe).
   */
  ids.joined = g_signal_new("viewer-joined", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr, nullptr,
                            G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * GstViewerManager::viewer-left:
   * @id: the viewer's session id
   * @reason: why (DELETE, transport failed, went silent, ...)
   *
   * A viewer that had joined is gone and all its resources are released.
   */
  ids.left = g_signal_new("viewer-left", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr, nullptr,
                          G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * GstViewerManager::authorize:
   * @method: "POST" (an offer, or a session's layer choice) or "DELETE"
   *   (the end of a session)
   * @path: the request's path, e.g. /whep, /whep/<id> or /whep/<id>/layer
   * @authorization: the Authorization header ("" when absent)
   * @remote_address: the client's IP address
   *
   * Lets an application check its own credentials (JWT, sessions) before a
   * WHEP request is read. Emitted on the HTTP server's thread: answer
   * quickly. Return FALSE to refuse (401 without an Authorization header,
   * else 403). Not connected: every request is allowed (see viewer-token).
   */
  ids.authorize = g_signal_new("authorize", type, G_SIGNAL_RUN_LAST, 0, g_signal_accumulator_first_wins, nullptr,
                               nullptr, G_TYPE_BOOLEAN, 4, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                               G_TYPE_STRING);
  /**
   * GstViewerManager::add-viewer:
   * @offer: the viewer's SDP offer (recvonly or sendrecv)
   *
   * Action signal for applications with their own signalling. Blocks until
   * the answer (with all candidates) is ready. Returns a GstStructure
   * "viewer" with fields status (int: 201 or an HTTP-like error status),
   * id (string), answer (string, SDP) and error (string).
   */
  g_signal_new_class_handler("add-viewer", type, GSignalFlags(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             add_viewer, nullptr, nullptr, nullptr, GST_TYPE_STRUCTURE, 1,
                             G_TYPE_STRING);
  /**
   * GstViewerManager::remove-viewer:
   * @id: a session id from add-viewer or WHEP
   *
   * Action signal: ends a viewer's session. Returns FALSE for an unknown id.
   */
  g_signal_new_class_handler("remove-viewer", type, GSignalFlags(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             remove_viewer, nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 1,
                             G_TYPE_STRING);
  /**
   * GstViewerManager::get-viewer-stats:
   * @id: a session id from add-viewer, viewer-joined or a WHEP resource URL
   *
   * Action signal: what is known of one viewer's transport and streams, for
   * monitoring. Returns a new GstStructure "viewer-stats" (free it), or
   * NULL for an unknown id. Fields: see WB_VIEWER_SIGNALS_DOC (shown by
   * gst-inspect-1.0). Viewers with a webrtcbin of their own report id,
   * path, state and sends-direct only: the rest would wait on webrtcbin.
   * Cheap; any thread.
   */
  g_signal_new_class_handler("get-viewer-stats", type, GSignalFlags(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             get_viewer_stats, nullptr, nullptr, nullptr, GST_TYPE_STRUCTURE, 1,
                             G_TYPE_STRING);
  /**
   * GstViewerManager::get-stats:
   *
   * Action signal: the node's numbers in one snapshot (audience, each
   * stream's fan-out, each sender shard), the same that the read-only
   * properties and GET <endpoint>/status show. Returns a new GstStructure
   * "node-stats" (free it); fields: see WB_NODE_STATS_DOC (shown by
   * gst-inspect-1.0). Cheap; any thread.
   */
  g_signal_new_class_handler("get-stats", type, GSignalFlags(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION), get_stats,
                             nullptr, nullptr, nullptr, GST_TYPE_STRUCTURE, 0);
  /**
   * GstViewerManager::set-viewer-layer:
   * @id: a session id
   * @layer: the video layer to pin the viewer to: 0 for the `video` pad, n
   *   for `video_n`; -1 to let its own feedback choose again
   *
   * Action signal. Without it, a viewer on the ICE-lite port is moved
   * between layers by its feedback: down when its estimate (REMB) falls
   * below its layer or its receiver reports heavy loss, up one layer at a
   * time when calm. Pinned, its video is sent from @layer from that layer's
   * next keyframe on (one is asked of its encoder), its sequence numbers
   * and timestamps running on without a gap. Returns FALSE for an unknown
   * id or layer, or a viewer whose video cannot move (one with a webrtcbin
   * of its own stays on layer 0). Any thread.
   */
  g_signal_new_class_handler("set-viewer-layer", type, GSignalFlags(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             set_viewer_layer, nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 2, G_TYPE_STRING,
                             G_TYPE_INT);
  return ids;
}

}  // namespace

namespace {

Audience::Inputs current_inputs(GstViewerManager *self) {
  std::lock_guard<std::mutex> lock(priv_of(self)->lock);
  return {priv_of(self)->video.fanout, priv_of(self)->audio.fanout};
}

GstStructure *add_viewer(GstViewerManager *self, const gchar *offer) {
  SessionHandler::Join join;
  if (!priv_of(self)->node) {
    join.status = 503;
    join.error = "viewermanager is not running";
  } else {
    SessionHandler::JoinRequest request;
    request.offer = offer ? offer : "";
    join = priv_of(self)->node->audience().join(request);
  }
  return gst_structure_new("viewer", "status", G_TYPE_INT, join.status, "id", G_TYPE_STRING,
                           join.session_id.c_str(), "answer", G_TYPE_STRING, join.answer.c_str(),
                           "error", G_TYPE_STRING, join.error.c_str(), nullptr);
}

gboolean remove_viewer(GstViewerManager *self, const gchar *id) {
  if (!priv_of(self)->node || !id) return FALSE;
  bool found = false;
  // Removal must not run on a webrtcbin thread; the control loop is safe.
  priv_of(self)->node->loop().invoke_sync([&] { found = priv_of(self)->node->audience().remove(id, "removed by application"); });
  return found;
}

GstStructure *get_viewer_stats(GstViewerManager *self, const gchar *id) {
  if (!id) return nullptr;
  return priv_of(self)->node->audience().viewer_stats(id);
}

GstStructure *get_stats(GstViewerManager *self) { return node_stats_structure(priv_of(self)->node->audience().stats()); }

gboolean set_viewer_layer(GstViewerManager *self, const gchar *id, gint layer) {
  return id && priv_of(self)->node && priv_of(self)->node->audience().set_viewer_layer(id, layer);
}

void apply_fanout_settings(GstViewerManager *self) {
  auto *priv = priv_of(self);
  std::lock_guard<std::mutex> lock(priv->lock);
  for (MediaInput *in : {&priv->video, &priv->audio}) {
    if (!in->fanout) continue;
    fanout_set_keyframe_min_interval(in->fanout, priv->settings.keyframe_min_interval_ms);
    fanout_set_report_time(in->fanout, priv->settings.report_time, priv->capture_delays);
    fanout_set_start_bitrate(in->fanout, priv->settings.start_bitrate);
  }
}

bool start(GstViewerManager *self) {
  auto *priv = priv_of(self);
  NodeSettings settings;
  {
    std::lock_guard<std::mutex> lock(priv->lock);
    settings = priv->settings.node;
  }
  auto inputs = [self] {
    Audience::Inputs in = current_inputs(self);
    return Pusher::Inputs{in.video, in.audio};
  };
  auto on_push_state = [self](Pusher::State state, const std::string &detail) {
    {
      std::lock_guard<std::mutex> lock(priv_of(self)->lock);
      priv_of(self)->push_state = state;
    }
    GST_INFO_OBJECT(self, "push %s %s", Pusher::state_name(state), detail.c_str());
    g_object_notify(G_OBJECT(self), "push-state");
  };
  std::string what, error;
  if (priv->node->start(settings, inputs, on_push_state, &what, &error)) return true;
  GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", what.c_str()), ("%s", error.c_str()));
  return false;
}

void stop(GstViewerManager *self) { priv_of(self)->node->stop(); }

// For the metrics: the push, and every relaysrc of the pipeline this
// element is in (a relay node's upstream). Whatever thread scrapes.
void add_links(GstViewerManager *self, NodeStats *stats) {
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->lock);
    if (!priv_of(self)->settings.node.push_url.empty())
      stats->pushes.push_back({"", priv_of(self)->settings.node.push_url, Pusher::state_name(priv_of(self)->push_state), 0});
  }
  GstObject *top = GST_OBJECT(gst_object_ref(self));
  while (GstObject *parent = gst_object_get_parent(top)) {
    gst_object_unref(top);
    top = parent;
  }
  GstIterator *it = GST_IS_BIN(top) ? gst_bin_iterate_recurse(GST_BIN(top)) : nullptr;
  GValue item = G_VALUE_INIT;
  for (bool done = !it; !done;) {
    switch (gst_iterator_next(it, &item)) {
      case GST_ITERATOR_OK: {
        GObject *element = G_OBJECT(g_value_get_object(&item));
        if (G_TYPE_CHECK_INSTANCE_TYPE(element, GST_TYPE_RELAY_SRC)) {
          gchar *state = nullptr, *url = nullptr, *location = nullptr;
          guint reconnects = 0;
          g_object_get(element, "upstream-state", &state, "upstream-url", &url, "location", &location, "reconnects",
                       &reconnects, nullptr);
          gchar *name = gst_object_get_name(GST_OBJECT(element));
          stats->upstreams.push_back({name, url ? url : location ? location : "", state ? state : "idle", reconnects});
          g_free(name);
          g_free(state);
          g_free(url);
          g_free(location);
        }
        g_value_reset(&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        stats->upstreams.clear();
        gst_iterator_resync(it);
        break;
      default:
        done = true;
    }
  }
  g_value_unset(&item);
  if (it) gst_iterator_free(it);
  gst_object_unref(top);
}

std::string node_path(GstViewerManager *self) {
  std::lock_guard<std::mutex> lock(priv_of(self)->lock);
  return priv_of(self)->upstream_path.empty() ? priv_of(self)->node_id : priv_of(self)->upstream_path;
}

// Nothing inside this bin is a sink that could post EOS for it (viewers
// come and go), so it posts EOS itself once every input has ended.
GstPadProbeReturn on_input_event(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *self = GST_VIEWER_MANAGER(data);
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  GstEventType type = GST_EVENT_TYPE(event);
  // A relaysrc upstream tells where this node sits in the relay tree.
  if (type == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY && gst_event_has_name(event, "broadcast-path")) {
    const gchar *path = gst_structure_get_string(gst_event_get_structure(event), "path");
    std::lock_guard<std::mutex> lock(priv_of(self)->lock);
    priv_of(self)->upstream_path = path ? path : "";
    return GST_PAD_PROBE_OK;
  }
  if (type != GST_EVENT_EOS && type != GST_EVENT_STREAM_START && type != GST_EVENT_FLUSH_STOP)
    return GST_PAD_PROBE_OK;
  bool all_ended = true;
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->lock);
    for (MediaInput *in : {&priv_of(self)->video, &priv_of(self)->audio}) {
      if (!in->fanout) continue;
      if (GST_OBJECT(in->fanout) == GST_OBJECT_PARENT(pad)) in->eos = type == GST_EVENT_EOS;
      all_ended &= in->eos;
    }
  }
  if (type == GST_EVENT_EOS && all_ended) {
    GST_INFO_OBJECT(self, "all inputs ended");
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_eos(GST_OBJECT(self)));
  }
  return GST_PAD_PROBE_OK;
}

MediaInput *input_for_template(GstViewerManager *self, GstPadTemplate *templ) {
  if (g_strcmp0(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "video") == 0) return &priv_of(self)->video;
  if (g_strcmp0(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "audio") == 0) return &priv_of(self)->audio;
  return nullptr;
}

}  // namespace

static void gst_viewer_manager_set_property(GObject *object, guint prop_id, const GValue *value,
                                            GParamSpec *pspec) {
  GstViewerManager *self = GST_VIEWER_MANAGER(object);
  auto *priv = priv_of(self);
  AudienceConfig config = priv->node->audience().config();
  const gchar *str = G_VALUE_HOLDS_STRING(value) ? g_value_get_string(value) : nullptr;
  switch (prop_id) {
    case PROP_PORT: {
      std::lock_guard<std::mutex> lock(priv->lock);
      priv->settings.node.port = g_value_get_uint(value);
      return;
    }
    case PROP_ADDRESS: {
      std::lock_guard<std::mutex> lock(priv->lock);
      priv->settings.node.address = str ? str : DEFAULT_PROP_ADDRESS;
      return;
    }
    case PROP_PUSH_URL: {
      std::lock_guard<std::mutex> lock(priv->lock);
      priv->settings.node.push_url = str ? str : "";
      return;
    }
    case PROP_PUSH_TOKEN: {
      std::lock_guard<std::mutex> lock(priv->lock);
      priv->settings.node.push_token = str ? str : "";
      return;
    }
    case PROP_VIEWER_TOKEN: {
      std::lock_guard<std::mutex> lock(priv->lock);
      priv->settings.node.viewer_token = str ? str : "";
      return;
    }
    case PROP_METRICS_PATH: {
      std::lock_guard<std::mutex> lock(priv->lock);
      priv->settings.node.metrics_path = str ? str : "";
      return;
    }
    case PROP_METRICS_TOKEN: {
      std::lock_guard<std::mutex> lock(priv->lock);
      priv->settings.node.metrics_token = str ? str : "";
      return;
    }
    case PROP_TLS_CERTIFICATE:
    case PROP_TLS_KEY:
    case PROP_TLS_CA: {
      std::lock_guard<std::mutex> lock(priv->lock);
      (prop_id == PROP_TLS_CERTIFICATE ? priv->settings.node.tls.certificate
       : prop_id == PROP_TLS_KEY       ? priv->settings.node.tls.key
                                       : priv->settings.node.tls_ca) = str ? str : "";
      return;
    }
    case PROP_KEYFRAME_MIN_INTERVAL: {
      {
        std::lock_guard<std::mutex> lock(priv->lock);
        priv->settings.keyframe_min_interval_ms = g_value_get_uint(value);
      }
      apply_fanout_settings(self);
      return;
    }
    case PROP_SENDER_REPORT_TIME: {
      {
        std::lock_guard<std::mutex> lock(priv->lock);
        priv->settings.report_time = ReportTime(g_value_get_enum(value));
      }
      apply_fanout_settings(self);
      return;
    }
    case PROP_START_BITRATE: {
      {
        std::lock_guard<std::mutex> lock(priv->lock);
        priv->settings.start_bitrate = g_value_get_uint(value);
      }
      apply_fanout_settings(self);
      return;
    }
    case PROP_MAX_VIEWERS:
      config.max_viewers = g_value_get_uint(value);
      break;
    case PROP_MAX_PENDING_VIEWERS:
      config.max_pending = g_value_get_uint(value);
      break;
    case PROP_MAX_PENDING_WEBRTCBIN:
      config.max_pending_webrtcbin = g_value_get_uint(value);
      break;
    case PROP_OFFERS_PER_SECOND:
    case PROP_HTTP_REQUEST_TIMEOUT:
    case PROP_MAX_HTTP_CONNECTIONS: {
      std::lock_guard<std::mutex> lock(priv->lock);
      HttpLimits &http = priv->settings.node.http;
      (prop_id == PROP_OFFERS_PER_SECOND      ? http.offers_per_second
       : prop_id == PROP_HTTP_REQUEST_TIMEOUT ? http.request_timeout_s
                                              : http.max_connections) = g_value_get_uint(value);
      return;
    }
    case PROP_STUN_SERVER:
      config.transport.stun_server = str ? str : "";
      break;
    case PROP_TURN_SERVERS:
      config.transport.turn_servers = split_list(str ? str : "");
      break;
    case PROP_ICE_ADDRESS:
      config.transport.ice_addresses = split_list(str ? str : "");
      break;
    case PROP_VIEWER_TIMEOUT:
      config.viewer_timeout = std::chrono::milliseconds(g_value_get_uint(value));
      break;
    case PROP_DIRECT_SEND:
      config.direct_send = g_value_get_boolean(value);
      break;
    case PROP_ICE_LITE:
      config.ice_lite = g_value_get_boolean(value);
      break;
    case PROP_ICE_LITE_PORT:
      config.ice_lite_port = uint16_t(g_value_get_uint(value));
      break;
    case PROP_SENDER_THREADS:
      config.sender_threads = g_value_get_uint(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      return;
  }
  priv->node->audience().configure(config);
}

static void gst_viewer_manager_get_property(GObject *object, guint prop_id, GValue *value,
                                            GParamSpec *pspec) {
  GstViewerManager *self = GST_VIEWER_MANAGER(object);
  auto *priv = priv_of(self);
  // From the node's snapshot, which takes priv->lock itself.
  switch (prop_id) {
    case PROP_VIEWER_COUNT:
      g_value_set_uint(value, priv->node->audience().stats().sessions);
      return;
    case PROP_DIRECT_VIEWERS:
      g_value_set_uint(value, priv->node->audience().stats().direct);
      return;
    case PROP_CHILDREN:
      g_value_set_uint(value, priv->node->audience().stats().status.children);
      return;
    case PROP_BYTES_SENT:
      g_value_set_uint64(value, priv->node->audience().stats().total(&FanoutStats::bytes_out));
      return;
    case PROP_KEYFRAME_REQUESTS:
      g_value_set_uint64(value, priv->node->audience().stats().total(&FanoutStats::keyframe_requests_sent));
      return;
    case PROP_RETRANSMISSIONS:
      g_value_set_uint64(value, priv->node->audience().stats().total(&FanoutStats::packets_retransmitted));
      return;
    default:
      break;
  }
  AudienceConfig config = priv->node->audience().config();
  std::lock_guard<std::mutex> lock(priv->lock);
  switch (prop_id) {
    case PROP_PORT:
      g_value_set_uint(value, priv->settings.node.port);
      break;
    case PROP_ADDRESS:
      g_value_set_string(value, priv->settings.node.address.c_str());
      break;
    case PROP_KEYFRAME_MIN_INTERVAL:
      g_value_set_uint(value, priv->settings.keyframe_min_interval_ms);
      break;
    case PROP_SENDER_REPORT_TIME:
      g_value_set_enum(value, int(priv->settings.report_time));
      break;
    case PROP_START_BITRATE:
      g_value_set_uint(value, priv->settings.start_bitrate);
      break;
    case PROP_MAX_VIEWERS:
      g_value_set_uint(value, config.max_viewers);
      break;
    case PROP_MAX_PENDING_VIEWERS:
      g_value_set_uint(value, config.max_pending);
      break;
    case PROP_MAX_PENDING_WEBRTCBIN:
      g_value_set_uint(value, config.max_pending_webrtcbin);
      break;
    case PROP_OFFERS_PER_SECOND:
      g_value_set_uint(value, priv->settings.node.http.offers_per_second);
      break;
    case PROP_HTTP_REQUEST_TIMEOUT:
      g_value_set_uint(value, priv->settings.node.http.request_timeout_s);
      break;
    case PROP_MAX_HTTP_CONNECTIONS:
      g_value_set_uint(value, priv->settings.node.http.max_connections);
      break;
    case PROP_STUN_SERVER:
      g_value_set_string(value, config.transport.stun_server.empty() ? nullptr
                                                                     : config.transport.stun_server.c_str());
      break;
    case PROP_TURN_SERVERS:
      g_value_set_string(value, join_list(config.transport.turn_servers).c_str());
      break;
    case PROP_ICE_ADDRESS:
      g_value_set_string(value, join_list(config.transport.ice_addresses).c_str());
      break;
    case PROP_VIEWER_TIMEOUT:
      g_value_set_uint(value, guint(config.viewer_timeout.count()));
      break;
    case PROP_DIRECT_SEND:
      g_value_set_boolean(value, config.direct_send);
      break;
    case PROP_ICE_LITE:
      g_value_set_boolean(value, config.ice_lite);
      break;
    case PROP_ICE_LITE_PORT:
      g_value_set_uint(value, config.ice_lite_port);
      break;
    case PROP_SENDER_THREADS:
      g_value_set_uint(value, config.sender_threads);
      break;
    case PROP_PUSH_URL:
      g_value_set_string(value, priv->settings.node.push_url.empty() ? nullptr : priv->settings.node.push_url.c_str());
      break;
    case PROP_PUSH_TOKEN:
      g_value_set_string(value, priv->settings.node.push_token.empty() ? nullptr : priv->settings.node.push_token.c_str());
      break;
    case PROP_VIEWER_TOKEN:
      g_value_set_string(value, priv->settings.node.viewer_token.empty() ? nullptr : priv->settings.node.viewer_token.c_str());
      break;
    case PROP_TLS_CERTIFICATE:
      g_value_set_string(value, priv->settings.node.tls.certificate.empty() ? nullptr : priv->settings.node.tls.certificate.c_str());
      break;
    case PROP_TLS_KEY:
      g_value_set_string(value, priv->settings.node.tls.key.empty() ? nullptr : priv->settings.node.tls.key.c_str());
      break;
    case PROP_TLS_CA:
      g_value_set_string(value, priv->settings.node.tls_ca.empty() ? nullptr : priv->settings.node.tls_ca.c_str());
      break;
    case PROP_METRICS_PATH:
      g_value_set_string(value, priv->settings.node.metrics_path.c_str());
      break;
    case PROP_METRICS_TOKEN:
      g_value_set_string(value,
                         priv->settings.node.metrics_token.empty() ? nullptr : priv->settings.node.metrics_token.c_str());
      break;
    case PROP_PUSH_STATE:
      g_value_set_string(value, Pusher::state_name(priv->push_state));
      break;
    case PROP_NODE_PATH:
      g_value_set_string(value, priv->upstream_path.empty() ? priv->node_id.c_str() : priv->upstream_path.c_str());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

// The queue every input gets: the fan-out runs on its thread, not on the
// encoder's; when the fan-out cannot keep up, old packets go rather than
// stalling the source. Its limit is in bytes, not time: after an upstream
// pause (a relay reconnecting) the next packet's timestamp would make a
// time-limited queue look full and drop the keyframe that ends the pause.
static GstElement *input_queue(const gchar *kind) {
  gchar *queue_name = g_strdup_printf("%s-queue", kind);
  GstElement *queue = gst_element_factory_make("queue", queue_name);
  g_free(queue_name);
  g_object_set(queue, "leaky", 2, "max-size-buffers", 0, "max-size-bytes", 1024 * 1024, "max-size-time",
               G_GUINT64_CONSTANT(0), nullptr);
  return queue;
}

// The pad's front, built for `caps` once: the class's chain between the
// pad and its queue. A later change of codec is refused.
static bool build_front(GstViewerManager *self, GstPad *pad, const GstCaps *caps) {
  ViewerManagerPrivate *priv = priv_of(self);
  const std::string media_type = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  std::lock_guard<std::mutex> lock(priv->fronts_lock);
  auto it = priv->fronts.find(pad);
  if (it == priv->fronts.end()) return false;
  Front &front = it->second;
  if (!front.media_type.empty()) {
    if (front.media_type == media_type) return true;
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Input changed codec mid-stream"),
                      ("%s: %s became %s", GST_PAD_NAME(pad), front.media_type.c_str(), media_type.c_str()));
    return false;
  }
  if (!front.end) {  // its medium was dropped: it ended once before it had caps
    GST_ELEMENT_ERROR(self, CORE, PAD, ("Cannot serve %s again", GST_PAD_NAME(pad)), (nullptr));
    return false;
  }
  GPtrArray *made = g_ptr_array_new();
  if (!GST_VIEWER_MANAGER_GET_CLASS(self)->input_chain(self, GST_PAD_NAME(pad), caps, made)) {
    for (guint i = 0; i < made->len; ++i) gst_object_unref(gst_object_ref_sink(g_ptr_array_index(made, i)));
    g_ptr_array_free(made, TRUE);
    return false;
  }
  std::vector<GstElement *> chain;
  for (guint i = 0; i < made->len; ++i) chain.push_back(GST_ELEMENT(gst_object_ref_sink(g_ptr_array_index(made, i))));
  g_ptr_array_free(made, TRUE);
  GstPad *first_sink = nullptr;
  if (chain.empty()) {
    first_sink = GST_PAD(gst_object_ref(front.end));
  } else {
    for (GstElement *e : chain) gst_bin_add(GST_BIN(self), e);
    for (size_t i = 0; i + 1 < chain.size(); ++i) gst_element_link(chain[i], chain[i + 1]);
    GstPad *last_src = gst_element_get_static_pad(chain.back(), "src");
    gst_pad_link(last_src, front.end);
    gst_object_unref(last_src);
    for (auto e = chain.rbegin(); e != chain.rend(); ++e) gst_element_sync_state_with_parent(*e);
    first_sink = gst_element_get_static_pad(chain.front(), "sink");
  }
  gst_ghost_pad_set_target(GST_GHOST_PAD(pad), first_sink);
  gst_object_unref(first_sink);
  front.media_type = media_type;
  front.chain = std::move(chain);
  GST_INFO_OBJECT(self, "%s: %s%s", GST_PAD_NAME(pad), media_type.c_str(),
                  front.chain.empty() ? "" : ", payloaded once for all viewers");
  return true;
}

static void drop_unused_input(GstElement *element, gpointer name);

static gboolean input_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  auto *self = GST_VIEWER_MANAGER(parent);
  ViewerManagerPrivate *priv = priv_of(self);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    bool unused;
    {
      std::lock_guard<std::mutex> lock(priv->fronts_lock);
      auto it = priv->fronts.find(pad);
      unused = it != priv->fronts.end() && it->second.media_type.empty() && it->second.end;
    }
    // An input that ends before it ever had caps carries nothing (a relaysrc
    // whose upstream lacks that medium): its medium goes, so that viewers
    // are not kept waiting for it. On another thread: that sets elements to
    // NULL.
    if (unused) {
      gst_element_call_async(GST_ELEMENT(self), drop_unused_input, g_strdup(GST_PAD_NAME(pad)), g_free);
      gst_event_unref(event);
      return TRUE;
    }
  }
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    if (!build_front(self, pad, caps)) {
      gst_event_unref(event);
      return FALSE;
    }
  }
  return gst_pad_event_default(pad, parent, event);
}

static gboolean input_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  GstPad *target = gst_ghost_pad_get_target(GST_GHOST_PAD(pad));
  if (target) {
    gst_object_unref(target);
    return gst_pad_query_default(pad, parent, query);
  }
  // No front yet: answer from what this pad can take.
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      GstCaps *filter, *templ = gst_pad_get_pad_template_caps(pad);
      gst_query_parse_caps(query, &filter);
      GstCaps *result = filter ? gst_caps_intersect_full(filter, templ, GST_CAPS_INTERSECT_FIRST) : gst_caps_ref(templ);
      gst_query_set_caps_result(query, result);
      gst_caps_unref(result);
      gst_caps_unref(templ);
      return TRUE;
    }
    case GST_QUERY_ACCEPT_CAPS: {
      GstCaps *caps, *templ = gst_pad_get_pad_template_caps(pad);
      gst_query_parse_accept_caps(query, &caps);
      gst_query_set_accept_caps_result(query, gst_caps_can_intersect(caps, templ));
      gst_caps_unref(templ);
      return TRUE;
    }
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

// An input pad named `name` whose media will end at `queue`: no target
// until its caps say what front it needs.
static GstPad *add_input_pad(GstViewerManager *self, const gchar *name, GstPadTemplate *templ, GstElement *queue) {
  GstPad *ghost = gst_ghost_pad_new_no_target_from_template(name, templ);
  gst_pad_set_event_function(ghost, input_event);
  gst_pad_set_query_function(ghost, input_query);
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->fronts_lock);
    priv_of(self)->fronts[ghost].end = gst_element_get_static_pad(queue, "sink");
  }
  gst_pad_set_active(ghost, TRUE);
  gst_element_add_pad(GST_ELEMENT(self), ghost);
  return ghost;
}

// The front's elements leave the bin (on dispose it has dropped them
// already; we hold references).
static void remove_front(GstViewerManager *self, GstPad *pad) {
  Front front;
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->fronts_lock);
    auto it = priv_of(self)->fronts.find(pad);
    if (it == priv_of(self)->fronts.end()) return;
    front = std::move(it->second);
    priv_of(self)->fronts.erase(it);
  }
  for (GstElement *e : front.chain) {
    if (GST_OBJECT_PARENT(e) == GST_OBJECT(self)) {
      gst_element_set_state(e, GST_STATE_NULL);
      gst_bin_remove(GST_BIN(self), e);
    }
    gst_object_unref(e);
  }
  if (front.end) gst_object_unref(front.end);
}

// The default input_chain: RTP as it is, nothing else.
static gboolean rtp_input_chain(GstViewerManager *self, const gchar *pad_name, const GstCaps *caps, GPtrArray *) {
  const gchar *media_type = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  if (g_str_equal(media_type, "application/x-rtp")) return TRUE;
  GST_ELEMENT_ERROR(self, STREAM, WRONG_TYPE, ("Unsupported input"), ("%s: caps %s", pad_name, media_type));
  return FALSE;
}

// video_%u: a further layer of the video, into the video fan-out (which
// the `video` pad, layer 0, brings).
static GstPad *request_layer_pad(GstViewerManager *self, GstPadTemplate *templ, const gchar *name) {
  ViewerManagerPrivate *priv = priv_of(self);
  unsigned layer = 0;
  if (name && sscanf(name, "video_%u", &layer) != 1) return nullptr;
  WbFanout *fanout;
  {
    std::lock_guard<std::mutex> lock(priv->lock);
    if (!name)
      for (layer = 1; layer < kMaxLayers && priv->layers[layer].ghost; ++layer) {
      }
    if (layer == 0 || layer >= kMaxLayers || priv->layers[layer].ghost || !priv->video.fanout) {
      GST_WARNING_OBJECT(self, "no pad video_%u: layers are 1 to %u, each once, after the pad video", layer,
                         kMaxLayers - 1);
      return nullptr;
    }
    fanout = WB_FANOUT(gst_object_ref(priv->video.fanout));
  }
  gchar *pad_name = g_strdup_printf("video_%u", layer);
  gchar *fanout_pad_name = g_strdup_printf("sink_%u", layer);
  GstPad *fanout_pad = gst_element_request_pad_simple(GST_ELEMENT(fanout), fanout_pad_name);
  g_free(fanout_pad_name);
  gst_object_unref(fanout);
  if (!fanout_pad) {
    g_free(pad_name);
    return nullptr;
  }
  GstElement *queue = input_queue(pad_name);
  gst_bin_add(GST_BIN(self), queue);
  GstPad *queue_src = gst_element_get_static_pad(queue, "src");
  gst_pad_link(queue_src, fanout_pad);
  gst_object_unref(queue_src);
  GstPad *ghost = add_input_pad(self, pad_name, templ, queue);
  g_free(pad_name);
  gst_element_sync_state_with_parent(queue);
  std::lock_guard<std::mutex> lock(priv->lock);
  priv->layers[layer] = {ghost, GST_ELEMENT(gst_object_ref(queue)), fanout_pad};
  return ghost;
}

static GstPad *gst_viewer_manager_request_new_pad(GstElement *element, GstPadTemplate *templ,
                                                  const gchar *name, const GstCaps *) {
  GstViewerManager *self = GST_VIEWER_MANAGER(element);
  if (g_strcmp0(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "video_%u") == 0) return request_layer_pad(self, templ, name);
  MediaInput *input = input_for_template(self, templ);
  if (!input) return nullptr;
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->lock);
    if (input->ghost) {
      GST_WARNING_OBJECT(self, "pad %s already exists", GST_PAD_TEMPLATE_NAME_TEMPLATE(templ));
      return nullptr;
    }
  }
  const gchar *kind = GST_PAD_TEMPLATE_NAME_TEMPLATE(templ);
  GstElement *queue = input_queue(kind);
  gchar *fanout_name = g_strdup_printf("%s-fanout", kind);
  auto *fanout = WB_FANOUT(g_object_new(WB_TYPE_FANOUT, "name", fanout_name, nullptr));
  g_free(fanout_name);
  gst_bin_add_many(GST_BIN(self), queue, GST_ELEMENT(fanout), nullptr);
  gst_element_link(queue, GST_ELEMENT(fanout));
  GstPad *fanout_sink = gst_element_get_static_pad(GST_ELEMENT(fanout), "sink");
  gst_pad_add_probe(fanout_sink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_input_event, self, nullptr);
  gst_object_unref(fanout_sink);
  GstPad *ghost = add_input_pad(self, kind, templ, queue);
  gst_element_sync_state_with_parent(queue);
  gst_element_sync_state_with_parent(GST_ELEMENT(fanout));
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->lock);
    input->ghost = ghost;
    // Our own references: on dispose the bin drops its children before
    // GstElement releases request pads.
    input->queue = GST_ELEMENT(gst_object_ref(queue));
    input->fanout = WB_FANOUT(gst_object_ref(fanout));
  }
  apply_fanout_settings(self);
  return ghost;
}

static void remove_child(GstViewerManager *self, GstElement *e) {
  if (!e) return;
  // On dispose the bin has already dropped its children; we hold references.
  if (GST_OBJECT_PARENT(e) == GST_OBJECT(self)) {
    gst_element_set_state(e, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(self), e);
  }
  gst_object_unref(e);
}

// What the input pad `pad` feeds leaves: its queue, and its fan-out (video,
// audio) or its layer's pad on the video fan-out. Viewers keep their
// sessions; their subscriptions to that medium go with it. With
// `forget_pad` the pad is no longer an input either. False: not ours.
static bool drop_input(GstViewerManager *self, GstPad *pad, bool forget_pad) {
  ViewerManagerPrivate *priv = priv_of(self);
  GstElement *queue = nullptr;
  WbFanout *fanout = nullptr;
  GstPad *fanout_pad = nullptr;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(priv->lock);
    for (LayerInput &l : priv->layers) {
      if (!l.ghost || l.ghost != pad) continue;
      found = true;
      std::swap(queue, l.queue);
      std::swap(fanout_pad, l.fanout_pad);
      if (forget_pad) l.ghost = nullptr;
    }
    for (MediaInput *in : {&priv->video, &priv->audio}) {
      if (found || in->ghost != pad) continue;
      found = true;
      std::swap(queue, in->queue);
      std::swap(fanout, in->fanout);
      in->eos = false;
      if (forget_pad) in->ghost = nullptr;
    }
  }
  remove_child(self, queue);
  remove_child(self, GST_ELEMENT(fanout));
  if (fanout_pad) {
    if (GstElement *parent = gst_pad_get_parent_element(fanout_pad)) {
      gst_element_release_request_pad(parent, fanout_pad);
      gst_object_unref(parent);
    }
    gst_object_unref(fanout_pad);
  }
  return found;
}

static void drop_unused_input(GstElement *element, gpointer name) {
  auto *self = GST_VIEWER_MANAGER(element);
  GstPad *pad = gst_element_get_static_pad(element, static_cast<const gchar *>(name));
  if (!pad) return;
  GstPad *end = nullptr;
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->fronts_lock);
    auto it = priv_of(self)->fronts.find(pad);
    if (it != priv_of(self)->fronts.end() && it->second.media_type.empty()) std::swap(end, it->second.end);
  }
  if (end) {
    GST_INFO_OBJECT(self, "%s ended without media: viewers are served without it", GST_PAD_NAME(pad));
    gst_object_unref(end);
    drop_input(self, pad, false);
  }
  gst_object_unref(pad);
}

static void gst_viewer_manager_release_pad(GstElement *element, GstPad *pad) {
  GstViewerManager *self = GST_VIEWER_MANAGER(element);
  {
    std::lock_guard<std::mutex> lock(priv_of(self)->fronts_lock);
    if (!priv_of(self)->fronts.count(pad)) return;
  }
  gst_object_ref(pad);
  gst_element_remove_pad(element, pad);
  remove_front(self, pad);
  drop_input(self, pad, true);
  gst_object_unref(pad);
}

// Messages whose handling costs O(viewers) each, posted O(viewers) times,
// made a viewer's cost grow with the audience (benchmark: 0.31 % of a core
// per viewer at 50 viewers, 0.49 % at 200; the profile showed the
// application thread busy in latency queries long after the joins):
// - LATENCY: every joining webrtcbin posts a few; each makes the pipeline
//   query the latency of every sink, i.e. of every viewer. Nothing in this
//   bin syncs to the clock (webrtcbin's sinks have sync=false), so the
//   answer never changes: dropped.
// - STREAM_START: a funnel inside each webrtcbin re-sends its sticky events
//   at every switch between its inputs, and the transport's sink posts one
//   each time (about one per viewer every two seconds, counted with 30
//   viewers); GstBin keeps and checks each against its children. The first
//   tells the pipeline the broadcast started; the rest are dropped. Dropping
//   them alone made no difference we could measure; LATENCY was the cost.
// - STATE_CHANGED of our children (our own is posted to our parent, not
//   through here): thousands per minute of joins and leaves, from
//   webrtcbin's threads, that nobody above reads. The pipeline's bus queues
//   messages in a lock-free queue whose writers spin on each other; with
//   hundreds of threads on one core, one profiled join of 200 viewers had
//   the control thread spinning there for 63 % of 8 s (seen once, not
//   reproduced). Dropping them is a precaution against that.
static void gst_viewer_manager_handle_message(GstBin *bin, GstMessage *message) {
  GstViewerManager *self = GST_VIEWER_MANAGER(bin);
  bool drop = GST_MESSAGE_TYPE(message) == GST_MESSAGE_LATENCY ||
              GST_MESSAGE_TYPE(message) == GST_MESSAGE_STATE_CHANGED ||
              (GST_MESSAGE_TYPE(message) == GST_MESSAGE_STREAM_START &&
               priv_of(self)->stream_start_forwarded.exchange(true));
  if (drop) {
    gst_message_unref(message);
    return;
  }
  GST_BIN_CLASS(gst_viewer_manager_parent_class)->handle_message(bin, message);
}

static GstStateChangeReturn gst_viewer_manager_change_state(GstElement *element,
                                                           GstStateChange transition) {
  GstViewerManager *self = GST_VIEWER_MANAGER(element);
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) priv_of(self)->stream_start_forwarded = false;
  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !start(self)) {
    stop(self);
    return GST_STATE_CHANGE_FAILURE;
  }
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    // Viewers' webrtcbins are children: end them before the bin walks them.
    priv_of(self)->node->loop().invoke_sync([self] { priv_of(self)->node->audience().remove_all("broadcast stopped"); });
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_viewer_manager_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) stop(self);
  // A live sink bin: viewers' webrtcbins never preroll.
  if (ret == GST_STATE_CHANGE_SUCCESS && transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    ret = GST_STATE_CHANGE_NO_PREROLL;
  return ret;
}

static gboolean gst_viewer_manager_remove_element(GstBin *bin, GstElement *element) {
  gboolean removed = GST_BIN_CLASS(gst_viewer_manager_parent_class)->remove_element(bin, element);
  // GstBin drops its SINK flag with its last sink child (the last viewer's
  // webrtcbin); without it the pipeline would no longer wait for our EOS.
  GST_OBJECT_FLAG_SET(bin, GST_ELEMENT_FLAG_SINK);
  return removed;
}

static void gst_viewer_manager_dispose(GObject *object) {
  GstViewerManager *self = GST_VIEWER_MANAGER(object);
  if (priv_of(self)) stop(self);
  G_OBJECT_CLASS(gst_viewer_manager_parent_class)->dispose(object);
}

static void gst_viewer_manager_finalize(GObject *object) {
  GstViewerManager *self = GST_VIEWER_MANAGER(object);
  priv_of(self)->node.reset();
  delete priv_of(self);
  G_OBJECT_CLASS(gst_viewer_manager_parent_class)->finalize(object);
}

static void gst_viewer_manager_class_init(GstViewerManagerClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  wb::debug_init();
  GST_DEBUG_CATEGORY_INIT(gst_viewer_manager_debug, "broadcastviewermanager", 0,
                          "webrtcbroadcast viewermanager");
  gobject_class->set_property = gst_viewer_manager_set_property;
  gobject_class->get_property = gst_viewer_manager_get_property;
  gobject_class->dispose = gst_viewer_manager_dispose;
  gobject_class->finalize = gst_viewer_manager_finalize;
  auto specs = viewer_param_specs();
  g_object_class_install_properties(gobject_class, specs.size(), specs.data());
  signals = install_viewer_signals(G_TYPE_FROM_CLASS(klass), G_CALLBACK(add_viewer), G_CALLBACK(remove_viewer),
                                   G_CALLBACK(get_viewer_stats), G_CALLBACK(get_stats), G_CALLBACK(set_viewer_layer));
  GST_BIN_CLASS(klass)->remove_element = gst_viewer_manager_remove_element;
  GST_BIN_CLASS(klass)->handle_message = gst_viewer_manager_handle_message;
  klass->input_chain = rtp_input_chain;
  element_class->request_new_pad = gst_viewer_manager_request_new_pad;
  element_class->release_pad = gst_viewer_manager_release_pad;
  element_class->change_state = gst_viewer_manager_change_state;
  gst_element_class_add_static_pad_template(element_class, &video_template);
  /**
   * GstViewerManager:video_%u:
   *
   * A further layer of the video (simulcast): the same picture encoded
   * again, at another size or bitrate (request the `video` pad first).
   * Each viewer is sent one layer at a time (`set-viewer-layer`; new
   * viewers get the first layer in the codec they decode) and moves
   * between them at a keyframe without a gap in its stream. A layer may
   * be in another codec (VP8 beside H.264): a viewer whose browser decodes
   * only that codec is served that layer, and moves only among its codec's.
   */
  gst_element_class_add_static_pad_template(element_class, &video_layer_template);
  gst_element_class_add_static_pad_template(element_class, &audio_template);
  gst_element_class_set_static_metadata(
      element_class, "WebRTC viewer manager", "Sink/Network/WebRTC",
      "Serves an RTP broadcast to many WebRTC viewers (WHEP server, one transport per viewer, "
      "shared fan-out)" WB_VIEWER_SIGNALS_DOC "; " WB_NODE_STATS_DOC,
      "webrtcbroadcast developers");
}

static void gst_viewer_manager_init(GstViewerManager *self) {
  static_cast<GstViewerManagerPrivate *>(gst_viewer_manager_get_instance_private(self))->impl =
      new ViewerManagerPrivate();
  Audience::Callbacks callbacks;
  callbacks.inputs = [self] { return current_inputs(self); };
  callbacks.joined = [self](const std::string &id) { g_signal_emit(self, signals.joined, 0, id.c_str()); };
  callbacks.left = [self](const std::string &id, const std::string &reason) {
    g_signal_emit(self, signals.left, 0, id.c_str(), reason.c_str());
  };
  callbacks.count_changed = [self] { g_object_notify(G_OBJECT(self), "viewer-count"); };
  callbacks.path = [self] { return node_path(self); };
  callbacks.instance = [self] { return priv_of(self)->node_id; };
  callbacks.links = [self](NodeStats *stats) { add_links(self, stats); };
  callbacks.authorize = [self](const SessionHandler::Access &a) {
    return emit_authorize(GST_ELEMENT(self), signals.authorize, a.method, a.path, a.authorization, a.remote_address);
  };
  gchar *uuid = g_uuid_string_random();
  priv_of(self)->node_id = std::string(uuid).substr(0, 8);
  g_free(uuid);
  priv_of(self)->node = std::make_unique<Node>(GST_BIN(self), callbacks);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}
