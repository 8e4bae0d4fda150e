/**
 * SECTION:element-relaysrc
 * @title: relaysrc
 *
 * Brings a broadcast in as RTP, one sometimes pad per medium ("video",
 * "audio"), to link straight into broadcastsink or viewermanager: nothing is
 * depayloaded, decoded or re-encoded.
 *
 * Pull mode (`location`): relaysrc is a WHEP viewer of an upstream node and
 * reconnects with backoff when it goes away. Ingest mode (`whip-port`): it
 * is a WHIP server for one publisher. Either way the streams continue
 * across upstream sessions (same SSRC, continuous sequence numbers), so
 * the viewers downstream keep their sessions through an upstream restart,
 * and their keyframe requests reach the upstream as RTCP PLI. The media
 * are those of the first upstream session: a medium it lacks gets a pad
 * that ends at once (EOS), and broadcastsink serves its viewers without it.
 *
 * |[
 * gst-launch-1.0 relaysrc location=http://root:8080/whep advertise-url=http://me:8081/whep name=r \
 *     broadcastsink name=b port=8081  r.video ! queue ! b.video  r.audio ! queue ! b.audio
 * ]|
 */
#include "relaysrc.h"

#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "common/debug.h"
#include "common/strings.h"
#include "relay/ingest.h"
#include "relay/puller.h"
#include "relay/relayoutput.h"
#include "relay/splice.h"
#include "signalling/tls.h"

GST_DEBUG_CATEGORY_STATIC(gst_relay_src_debug);
#define GST_CAT_DEFAULT gst_relay_src_debug

using namespace wb;

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_WHIP_PORT,
  PROP_WHIP_ADDRESS,
  PROP_TOKEN,
  PROP_ADVERTISE_URL,
  PROP_NODE_ID,
  PROP_STUN_SERVER,
  PROP_TURN_SERVERS,
  PROP_ICE_ADDRESS,
  PROP_LATENCY,
  PROP_UPSTREAM_TIMEOUT,
  PROP_UPSTREAM_STATE,
  PROP_UPSTREAM_URL,
  PROP_RECONNECTS,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_KEY,
  PROP_TLS_CA,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

static GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE(
    "video", GST_PAD_SRC, GST_PAD_SOMETIMES,
    GST_STATIC_CAPS("application/x-rtp, media=(string)video, encoding-name=(string){ H264, VP8, VP9 }"));
static GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE(
    "audio", GST_PAD_SRC, GST_PAD_SOMETIMES,
    GST_STATIC_CAPS("application/x-rtp, media=(string)audio, encoding-name=(string){ OPUS }"));

namespace {

// webrtcbin adds a source pad before caps are set on it; its transceiver
// knows the medium.
std::string pad_kind(GstPad *pad) {
  GstWebRTCRTPTransceiver *trans = nullptr;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pad), "transceiver"))
    g_object_get(pad, "transceiver", &trans, nullptr);
  if (trans) {
    GstWebRTCKind kind = GST_WEBRTC_KIND_UNKNOWN;
    g_object_get(trans, "kind", &kind, nullptr);
    gst_object_unref(trans);
    if (kind == GST_WEBRTC_KIND_VIDEO) return "video";
    if (kind == GST_WEBRTC_KIND_AUDIO) return "audio";
  }
  GstCaps *caps = gst_pad_get_current_caps(pad);
  std::string out;
  if (caps) {
    const gchar *media = gst_structure_get_string(gst_caps_get_structure(caps, 0), "media");
    out = media ? media : "";
    gst_caps_unref(caps);
  }
  return out;
}

const char *state_name(UpstreamState s) {
  switch (s) {
    case UpstreamState::Idle: return "idle";
    case UpstreamState::Connecting: return "connecting";
    case UpstreamState::Live: return "live";
    case UpstreamState::Lost: return "lost";
  }
  return "idle";
}

struct Settings {
  std::string location;
  guint whip_port = 0;
  std::string whip_address = "0.0.0.0";
  std::string token;
  TlsFiles tls;        // ingest: HTTPS
  std::string tls_ca;  // pull: the authorities to trust
  std::string advertise_url;
  std::string node_id;
  TransportConfig transport;
  guint latency_ms = 50;
  guint upstream_timeout_ms = 1500;
};

}  // namespace

struct RelaySrcPrivate;

struct _GstRelaySrc {
  GstBin parent;
  RelaySrcPrivate *priv;
};

G_DEFINE_TYPE(GstRelaySrc, gst_relay_src, GST_TYPE_BIN)

// The element as its upstreams see it: splices and pads per medium.
struct RelaySrcPrivate : public RelayOutput {
  explicit RelaySrcPrivate(GstRelaySrc *element) : self(element) {}

  GstBin *bin() override { return GST_BIN(self); }

  bool link(GstPad *pad) override {
    std::string kind = pad_kind(pad);
    if (kind != "video" && kind != "audio") {
      GST_WARNING_OBJECT(self, "ignoring upstream pad %s without a medium", GST_PAD_NAME(pad));
      return false;
    }
    if (!carries(kind)) {
      GST_INFO_OBJECT(self, "ignoring upstream %s: this relay's %s pad has ended", GST_PAD_NAME(pad), kind.c_str());
      return false;
    }
    WbSplice *splice = splice_for(kind);
    return splice && splice_attach(splice, pad);
  }

  void expect(const std::vector<std::string> &kinds) override {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mutex);
      first = !announced_pads;
      announced_pads = true;
      if (first) carried = kinds;
    }
    for (const auto &kind : kinds)
      if (carries(kind)) splice_for(kind);
    if (!first) return;
    for (const char *kind : {"video", "audio"})
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) end_pad(kind);
    gst_element_no_more_pads(GST_ELEMENT(self));
  }

  bool carries(const std::string &kind) override {
    std::lock_guard<std::mutex> lock(mutex);
    return !announced_pads || std::find(carried.begin(), carried.end(), kind) != carried.end();
  }

  // A launch line links both pads, and broadcastsink's request pad for a
  // medium exists before anything flows: without an end it would keep every
  // viewer waiting (409) for a medium the upstream does not have.
  void end_pad(const char *kind) {
    GstPadTemplate *templ = gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(self), kind);
    GstPad *pad = gst_pad_new_from_template(templ, kind);
    gst_pad_set_active(pad, TRUE);
    gst_element_add_pad(GST_ELEMENT(self), pad);
    gchar *stream_id = gst_pad_create_stream_id(pad, GST_ELEMENT(self), kind);
    gst_pad_push_event(pad, gst_event_new_stream_start(stream_id));
    g_free(stream_id);
    gst_pad_push_event(pad, gst_event_new_eos());
    GST_INFO_OBJECT(self, "the upstream has no %s: %s pad ended", kind, kind);
  }

  void unlink_all() override {
    for (WbSplice *s : splices()) splice_detach_all(s);
  }

  gint64 last_media_us() override {
    gint64 last = 0;
    for (WbSplice *s : splices()) last = std::max(last, splice_last_packet_us(s));
    return last;
  }

  Codec codec(const std::string &kind) override {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = splice_by_kind.find(kind);
    return it == splice_by_kind.end() ? Codec::Unknown : splice_codec(it->second);
  }

  void set_path(const std::string &p) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      path = p;
    }
    for (WbSplice *s : splices()) splice_set_path(s, p);
  }

  void set_state(UpstreamState s, const std::string &detail, const std::string &url) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      state = s;
      if (!url.empty()) upstream_url = url;
    }
    if (detail.empty()) GST_INFO_OBJECT(self, "upstream %s", state_name(s));
    else GST_INFO_OBJECT(self, "upstream %s: %s", state_name(s), detail.c_str());
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_UPSTREAM_STATE]);
  }

  std::vector<WbSplice *> splices() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<WbSplice *> out;
    for (auto &s : splice_by_kind) out.push_back(s.second);
    return out;
  }

  // The splice (and with it the element's pad) of a medium, made when the
  // first upstream session brings that medium.
  WbSplice *splice_for(const std::string &kind) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = splice_by_kind.find(kind);
    if (it != splice_by_kind.end()) return it->second;
    auto *splice = WB_SPLICE(g_object_new(WB_TYPE_SPLICE, "name", (kind + "-splice").c_str(), nullptr));
    gst_bin_add(GST_BIN(self), GST_ELEMENT(splice));
    gst_element_sync_state_with_parent(GST_ELEMENT(splice));
    if (!path.empty()) splice_set_path(splice, path);
    GstPad *target = gst_element_get_static_pad(GST_ELEMENT(splice), "src");
    GstPadTemplate *templ = gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(self), kind.c_str());
    GstPad *ghost = gst_ghost_pad_new_from_template(kind.c_str(), target, templ);
    gst_object_unref(target);
    gst_pad_set_active(ghost, TRUE);
    gst_element_add_pad(GST_ELEMENT(self), ghost);
    splice_by_kind[kind] = splice;
    GST_INFO_OBJECT(self, "new %s pad", kind.c_str());
    return splice;
  }

  GstRelaySrc *self;
  std::mutex mutex;
  Settings settings;
  std::map<std::string, WbSplice *> splice_by_kind;  // owned by the bin
  std::string path;
  bool announced_pads = false;
  std::vector<std::string> carried;  // the first session's media
  UpstreamState state = UpstreamState::Idle;
  std::string upstream_url;
  std::unique_ptr<Puller> puller;
  std::unique_ptr<Ingest> ingest;
  unsigned reconnects_before = 0;
};

namespace {

bool start(GstRelaySrc *self) {
  auto *priv = self->priv;
  Settings s;
  {
    std::lock_guard<std::mutex> lock(priv->mutex);
    s = priv->settings;
  }
  if (s.location.empty() == (s.whip_port == 0)) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Set either location (pull) or whip-port (ingest)"),
                      ("location='%s' whip-port=%u", s.location.c_str(), s.whip_port));
    return false;
  }
  if (!s.location.empty()) {
    std::string error;
    GTlsDatabase *ca = s.tls_ca.empty() ? nullptr : load_tls_ca(s.tls_ca, &error);
    if (!s.tls_ca.empty() && !ca) {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not read tls-ca"), ("%s", error.c_str()));
      return false;
    }
    if (ca) g_object_unref(ca);
    PullConfig config;
    config.url = s.location;
    config.token = s.token;
    config.tls_ca = s.tls_ca;
    config.node_id = s.node_id;
    config.advertise_url = s.advertise_url;
    config.transport = s.transport;
    config.latency_ms = s.latency_ms;
    config.upstream_timeout = std::chrono::milliseconds(s.upstream_timeout_ms);
    priv->puller = std::make_unique<Puller>(*priv, config);
    return true;
  }
  IngestConfig config;
  config.address = s.whip_address;
  config.port = s.whip_port;
  config.token = s.token;
  config.tls = s.tls;
  config.node_id = s.node_id;
  config.transport = s.transport;
  config.latency_ms = s.latency_ms;
  config.upstream_timeout = std::chrono::milliseconds(s.upstream_timeout_ms);
  priv->ingest = std::make_unique<Ingest>(*priv, config);
  std::string error;
  if (!priv->ingest->start(&error)) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not start the WHIP server"), ("%s", error.c_str()));
    priv->ingest.reset();
    return false;
  }
  return true;
}

void stop(GstRelaySrc *self) {
  auto *priv = self->priv;
  if (priv->puller) priv->reconnects_before += priv->puller->reconnects();
  priv->puller.reset();
  priv->ingest.reset();
}

}  // namespace

static void gst_relay_src_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *priv = GST_RELAY_SRC(object)->priv;
  std::lock_guard<std::mutex> lock(priv->mutex);
  Settings &s = priv->settings;
  const gchar *str = G_VALUE_HOLDS_STRING(value) ? g_value_get_string(value) : nullptr;
  switch (prop_id) {
    case PROP_LOCATION: s.location = str ? str : ""; break;
    case PROP_WHIP_PORT: s.whip_port = g_value_get_uint(value); break;
    case PROP_WHIP_ADDRESS: s.whip_address = str ? str : "0.0.0.0"; break;
    case PROP_TOKEN: s.token = str ? str : ""; break;
    case PROP_TLS_CERTIFICATE: s.tls.certificate = str ? str : ""; break;
    case PROP_TLS_KEY: s.tls.key = str ? str : ""; break;
    case PROP_TLS_CA: s.tls_ca = str ? str : ""; break;
    case PROP_ADVERTISE_URL: s.advertise_url = str ? str : ""; break;
    case PROP_NODE_ID: if (str && *str) s.node_id = str; break;
    case PROP_STUN_SERVER: s.transport.stun_server = str ? str : ""; break;
    case PROP_TURN_SERVERS: s.transport.turn_servers = split_list(str ? str : ""); break;
    case PROP_ICE_ADDRESS: s.transport.ice_addresses = split_list(str ? str : ""); break;
    case PROP_LATENCY: s.latency_ms = g_value_get_uint(value); break;
    case PROP_UPSTREAM_TIMEOUT: s.upstream_timeout_ms = g_value_get_uint(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_relay_src_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *priv = GST_RELAY_SRC(object)->priv;
  if (prop_id == PROP_RECONNECTS) {
    unsigned n = priv->reconnects_before;
    if (priv->puller) n += priv->puller->reconnects();
    g_value_set_uint(value, n);
    return;
  }
  std::lock_guard<std::mutex> lock(priv->mutex);
  const Settings &s = priv->settings;
  switch (prop_id) {
    case PROP_LOCATION: g_value_set_string(value, s.location.c_str()); break;
    case PROP_WHIP_PORT: g_value_set_uint(value, s.whip_port); break;
    case PROP_WHIP_ADDRESS: g_value_set_string(value, s.whip_address.c_str()); break;
    case PROP_TOKEN: g_value_set_string(value, s.token.c_str()); break;
    case PROP_TLS_CERTIFICATE: g_value_set_string(value, s.tls.certificate.c_str()); break;
    case PROP_TLS_KEY: g_value_set_string(value, s.tls.key.c_str()); break;
    case PROP_TLS_CA: g_value_set_string(value, s.tls_ca.c_str()); break;
    case PROP_ADVERTISE_URL: g_value_set_string(value, s.advertise_url.c_str()); break;
    case PROP_NODE_ID: g_value_set_string(value, s.node_id.c_str()); break;
    case PROP_STUN_SERVER: g_value_set_string(value, s.transport.stun_server.c_str()); break;
    case PROP_TURN_SERVERS: g_value_set_string(value, join_list(s.transport.turn_servers).c_str()); break;
    case PROP_ICE_ADDRESS: g_value_set_string(value, join_list(s.transport.ice_addresses).c_str()); break;
    case PROP_LATENCY: g_value_set_uint(value, s.latency_ms); break;
    case PROP_UPSTREAM_TIMEOUT: g_value_set_uint(value, s.upstream_timeout_ms); break;
    case PROP_UPSTREAM_STATE: g_value_set_string(value, state_name(priv->state)); break;
    case PROP_UPSTREAM_URL: g_value_set_string(value, priv->upstream_url.c_str()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static GstStateChangeReturn gst_relay_src_change_state(GstElement *element, GstStateChange transition) {
  GstRelaySrc *self = GST_RELAY_SRC(element);
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start(self)) {
    stop(self);
    return GST_STATE_CHANGE_FAILURE;
  }
  // Upstream sessions are children: end them before the bin walks them.
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) stop(self);
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_relay_src_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED || transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED)
    ret = GST_STATE_CHANGE_NO_PREROLL;
  return ret;
}

// EOS asked of the pipeline (gst-launch -e, an application stopping) ends
// our output; an upstream that ends is a loss and never reaches viewers.
static gboolean gst_relay_src_send_event(GstElement *element, GstEvent *event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    GstRelaySrc *self = GST_RELAY_SRC(element);
    // End the upstream first: silence after EOS is no loss to reconnect from.
    stop(self);
    for (WbSplice *s : self->priv->splices()) splice_send_eos(s);
    gst_event_unref(event);
    return TRUE;
  }
  return GST_ELEMENT_CLASS(gst_relay_src_parent_class)->send_event(element, event);
}

// A source, whatever its children are: GstBin would take the SINK flag from
// an upstream session's webrtcbin (and the pipeline would then wait for our
// EOS message), and drop SOURCE with the last session (and never send us EOS).
static void keep_source_flags(GstBin *bin) {
  GST_OBJECT_LOCK(bin);
  GST_OBJECT_FLAG_UNSET(bin, GST_ELEMENT_FLAG_SINK);
  GST_OBJECT_FLAG_SET(bin, GST_ELEMENT_FLAG_SOURCE);
  GST_OBJECT_UNLOCK(bin);
}

static gboolean gst_relay_src_add_element(GstBin *bin, GstElement *element) {
  gboolean added = GST_BIN_CLASS(gst_relay_src_parent_class)->add_element(bin, element);
  keep_source_flags(bin);
  return added;
}

static gboolean gst_relay_src_remove_element(GstBin *bin, GstElement *element) {
  gboolean removed = GST_BIN_CLASS(gst_relay_src_parent_class)->remove_element(bin, element);
  keep_source_flags(bin);
  return removed;
}

static void gst_relay_src_dispose(GObject *object) {
  GstRelaySrc *self = GST_RELAY_SRC(object);
  if (self->priv) stop(self);
  G_OBJECT_CLASS(gst_relay_src_parent_class)->dispose(object);
}

static void gst_relay_src_finalize(GObject *object) {
  delete GST_RELAY_SRC(object)->priv;
  G_OBJECT_CLASS(gst_relay_src_parent_class)->finalize(object);
}

static void gst_relay_src_class_init(GstRelaySrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  wb::debug_init();
  GST_DEBUG_CATEGORY_INIT(gst_relay_src_debug, "broadcastrelaysrc", 0, "webrtcbroadcast relaysrc");
  gobject_class->set_property = gst_relay_src_set_property;
  gobject_class->get_property = gst_relay_src_get_property;
  gobject_class->dispose = gst_relay_src_dispose;
  gobject_class->finalize = gst_relay_src_finalize;

  auto flags = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_LOCATION] = g_param_spec_string(
      "location", "Upstream WHEP URL",
      "Pull mode: WHEP endpoint of the upstream node (ours or any WHEP server), http:// or https:// (its "
      "certificate is verified, see tls-ca); 307 redirects are followed",
      nullptr, flags);
  properties[PROP_WHIP_PORT] = g_param_spec_uint(
      "whip-port", "WHIP port", "Ingest mode: TCP port of the WHIP endpoint (POST /whip) for one publisher (0 = off)",
      0, 65535, 0, flags);
  properties[PROP_WHIP_ADDRESS] = g_param_spec_string(
      "whip-address", "WHIP address", "Ingest mode: IP address the WHIP endpoint listens on", "0.0.0.0", flags);
  properties[PROP_TOKEN] = g_param_spec_string(
      "token", "Bearer token",
      "Pull mode: sent upstream as Authorization: Bearer. Ingest mode: publishers must send it (else 401)",
      nullptr, flags);
  properties[PROP_TLS_CERTIFICATE] = g_param_spec_string(
      "tls-certificate", "TLS certificate",
      "Ingest mode: PEM file of the WHIP endpoint's certificate (leaf first, then the intermediates); with "
      "tls-key the endpoint speaks HTTPS only. Read when the element starts; a file it cannot use fails the "
      "state change",
      nullptr, flags);
  properties[PROP_TLS_KEY] = g_param_spec_string(
      "tls-key", "TLS key", "Ingest mode: PEM file of tls-certificate's private key (unencrypted)", nullptr, flags);
  properties[PROP_TLS_CA] = g_param_spec_string(
      "tls-ca", "TLS CA",
      "Pull mode: PEM file of the certificate authorities an https:// upstream's certificate must chain to, "
      "instead of the system's (for a private CA). An upstream whose certificate does not verify is refused, "
      "and retried with backoff",
      nullptr, flags);
  properties[PROP_ADVERTISE_URL] = g_param_spec_string(
      "advertise-url", "Advertised WHEP URL",
      "Pull mode: this node's own public WHEP URL, told to the upstream (Broadcast-Relay-Url) so it can "
      "redirect viewers here when it is full",
      nullptr, flags);
  properties[PROP_NODE_ID] = g_param_spec_string(
      "node-id", "Node id",
      "Identity of this relay in the tree (sent as Broadcast-Node; used to refuse loops). Random by default",
      nullptr, flags);
  properties[PROP_STUN_SERVER] = g_param_spec_string(
      "stun-server", "STUN server", "STUN server for the upstream transport, stun://host:port", nullptr, flags);
  properties[PROP_TURN_SERVERS] = g_param_spec_string(
      "turn-servers", "TURN servers",
      "Comma-separated TURN servers for the upstream transport, turn(s)://user:password@host:port", nullptr, flags);
  properties[PROP_ICE_ADDRESS] = g_param_spec_string(
      "ice-address", "ICE addresses", "Comma-separated local IP addresses to gather ICE candidates on (default: all)",
      nullptr, flags);
  properties[PROP_LATENCY] = g_param_spec_uint(
      "latency", "Latency",
      "Most time (ms) the upstream jitter buffer waits for a missing packet before moving on", 0, 10000, 50, flags);
  properties[PROP_UPSTREAM_TIMEOUT] = g_param_spec_uint(
      "upstream-timeout", "Upstream timeout",
      "Silence (ms) after which the upstream counts as lost and a new session is made", 200, 600000, 1500, flags);
  properties[PROP_UPSTREAM_STATE] = g_param_spec_string(
      "upstream-state", "Upstream state", "idle, connecting, live or lost (notified on change)", "idle", ro);
  properties[PROP_UPSTREAM_URL] = g_param_spec_string(
      "upstream-url", "Upstream URL", "The URL that answered the last offer (after redirects)", nullptr, ro);
  properties[PROP_RECONNECTS] = g_param_spec_uint(
      "reconnects", "Reconnects", "Upstream sessions made after the first one", 0, G_MAXUINT, 0, ro);
  g_object_class_install_properties(gobject_class, N_PROPERTIES, properties);

  GST_BIN_CLASS(klass)->add_element = gst_relay_src_add_element;
  GST_BIN_CLASS(klass)->remove_element = gst_relay_src_remove_element;
  element_class->change_state = gst_relay_src_change_state;
  element_class->send_event = gst_relay_src_send_event;
  gst_element_class_add_static_pad_template(element_class, &video_template);
  gst_element_class_add_static_pad_template(element_class, &audio_template);
  gst_element_class_set_static_metadata(
      element_class, "WebRTC relay source", "Source/Network/WebRTC",
      "Pulls a broadcast from an upstream WHEP node, or takes one from a WHIP publisher, as RTP for "
      "broadcastsink (no decoding); streams continue across upstream reconnections",
      "webrtcbroadcast developers");
}

static void gst_relay_src_init(GstRelaySrc *self) {
  self->priv = new RelaySrcPrivate(self);
  gchar *uuid = g_uuid_string_random();
  self->priv->settings.node_id = std::string(uuid).substr(0, 8);
  g_free(uuid);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
}
