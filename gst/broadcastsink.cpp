/**
 * SECTION:element-broadcastsink
 * @title: broadcastsink
 *
 * Broadcasts one encoded stream to many WebRTC viewers. Each input is parsed
 * and payloaded once (H.264, VP8, VP9, Opus; already-payloaded RTP passes
 * through untouched) and handed to an internal viewermanager, which shares
 * it with every viewer (on one shared ICE-lite UDP port): a viewer costs
 * encryption and sending, never encoding. Viewers join with WHEP (`POST /whep` on `port`) or the
 * `add-viewer` action signal; the page at `/` plays the broadcast.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency key-int-max=60 ! broadcastsink port=8080
 * ]|
 *
 * Keyframes: viewers joining and viewers' PLI/FIR become at most one
 * upstream force-key-unit event (all-headers) per `keyframe-min-interval`.
 */
#include "broadcastsink.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <gst/video/video-event.h>

#include "fanout/fanout.h"
#include "viewermanager.h"
#include "viewer/nodestats.h"

GST_DEBUG_CATEGORY_STATIC(gst_broadcast_sink_debug);
#define GST_CAT_DEFAULT gst_broadcast_sink_debug

namespace {

struct Input {
  GstPad *ghost = nullptr;          // our request pad
  GstPad *manager_pad = nullptr;    // viewermanager's request pad
  std::string media_type;           // caps name the chain was built for
  std::vector<GstElement *> chain;  // parser / payloader (none for RTP input)
};

// Inputs by index: video layers 0 (`video`) to kMaxLayers - 1 (`video_n`),
// then audio.
constexpr unsigned kAudio = wb::kMaxLayers;
constexpr unsigned kInputs = wb::kMaxLayers + 1;

}  // namespace

struct _GstBroadcastSink {
  GstBin parent;
  GstElement *manager;
  std::mutex *lock;
  std::array<Input, kInputs> *inputs;
};

G_DEFINE_TYPE(GstBroadcastSink, gst_broadcast_sink, GST_TYPE_BIN)

static wb::ViewerSignalIds signals;

static GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE(
    "video", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("video/x-h264, stream-format=(string){ byte-stream, avc }; "
                    "video/x-vp8; video/x-vp9; "
                    "application/x-rtp, media=(string)video, encoding-name=(string){ H264, VP8, VP9 }"));
static GstStaticPadTemplate video_layer_template = GST_STATIC_PAD_TEMPLATE(
    "video_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("video/x-h264, stream-format=(string){ byte-stream, avc }; "
                    "video/x-vp8; video/x-vp9; "
                    "application/x-rtp, media=(string)video, encoding-name=(string){ H264, VP8, VP9 }"));
static GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE(
    "audio", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("audio/x-opus; "
                    "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS"));

namespace {

Input *input_of(GstBroadcastSink *self, GstPad *ghost) {
  for (Input &input : *self->inputs)
    if (input.ghost && input.ghost == ghost) return &input;
  return nullptr;
}

// The input a pad name stands for: video, video_<n> (a layer), audio.
Input *input_named(GstBroadcastSink *self, const gchar *name) {
  unsigned layer;
  if (g_str_equal(name, "audio")) return &(*self->inputs)[kAudio];
  if (g_str_equal(name, "video")) return &(*self->inputs)[0];
  if (sscanf(name, "video_%u", &layer) == 1 && layer > 0 && layer < wb::kMaxLayers) return &(*self->inputs)[layer];
  return nullptr;
}

GstElement *make(const char *factory, const char *name_prefix, const char *kind) {
  gchar *name = g_strdup_printf("%s-%s", kind, name_prefix);
  GstElement *e = gst_element_factory_make(factory, name);
  g_free(name);
  return e;
}

// The one place where encoded media becomes RTP: parser and payloader for
// this caps name. Empty for RTP input (a relay): it is forwarded as it is.
std::vector<GstElement *> payload_chain(const std::string &media_type, const char *kind) {
  std::vector<GstElement *> chain;
  if (media_type == "video/x-h264") {
    chain.push_back(make("h264parse", "parse", kind));
    GstElement *pay = make("rtph264pay", "pay", kind);
    // SPS/PPS with every IDR, so a viewer can start at any keyframe.
    g_object_set(pay, "config-interval", -1, "aggregate-mode", 1 /* zero-latency */, nullptr);
    if (pay) {
      // rtph264pay 1.22 answers a downstream all-headers force-key-unit by
      // sending SPS/PPS ahead of the IDR with the marker bit set and the IDR's
      // timestamp. Chromium takes that for a finished frame, drops it and
      // sends PLI: one keyframe request per interval, forever. The headers
      // are already in-band (config-interval=-1), so the event stops here.
      GstPad *pay_sink = gst_element_get_static_pad(pay, "sink");
      gst_pad_add_probe(pay_sink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                        +[](GstPad *, GstPadProbeInfo *info, gpointer) {
                          return gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info))
                                     ? GST_PAD_PROBE_DROP
                                     : GST_PAD_PROBE_OK;
                        },
                        nullptr, nullptr);
      gst_object_unref(pay_sink);
    }
    chain.push_back(pay);
  } else if (media_type == "video/x-vp8") {
    chain.push_back(make("rtpvp8pay", "pay", kind));
    g_object_set(chain.back(), "picture-id-mode", 2 /* 15-bit */, nullptr);
  } else if (media_type == "video/x-vp9") {
    chain.push_back(make("rtpvp9pay", "pay", kind));
    g_object_set(chain.back(), "picture-id-mode", 2 /* 15-bit */, nullptr);
  } else if (media_type == "audio/x-opus") {
    chain.push_back(make("rtpopuspay", "pay", kind));
  }
  for (GstElement *e : chain)
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), "mtu")) g_object_set(e, "mtu", 1200, nullptr);
  return chain;
}

bool build_chain(GstBroadcastSink *self, Input *input, const GstCaps *caps) {
  const std::string media_type = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  if (!input->media_type.empty()) {
    if (input->media_type == media_type) return true;
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Input changed codec mid-stream"),
                      ("%s became %s", input->media_type.c_str(), media_type.c_str()));
    return false;
  }
  const char *kind = GST_PAD_NAME(input->ghost);
  auto chain = payload_chain(media_type, kind);
  if (media_type != "application/x-rtp" && chain.empty()) {
    GST_ELEMENT_ERROR(self, STREAM, WRONG_TYPE, ("Unsupported input"), ("caps %s", media_type.c_str()));
    return false;
  }
  if (std::any_of(chain.begin(), chain.end(), [](GstElement *e) { return e == nullptr; })) {
    for (GstElement *made : chain)
      if (made) gst_object_unref(gst_object_ref_sink(made));
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("Missing parser or payloader for %s", media_type.c_str()),
                      (nullptr));
    return false;
  }
  if (!input->manager_pad) {  // it ended once before it had caps
    input->manager_pad = gst_element_request_pad_simple(self->manager, kind);
    if (!input->manager_pad) {
      for (GstElement *made : chain) gst_object_unref(gst_object_ref_sink(made));
      GST_ELEMENT_ERROR(self, CORE, PAD, ("Cannot serve %s again", kind), (nullptr));
      return false;
    }
  }
  for (GstElement *e : chain) gst_object_ref_sink(e);
  GstPad *first_sink = nullptr;
  if (chain.empty()) {
    first_sink = GST_PAD(gst_object_ref(input->manager_pad));
  } else {
    for (GstElement *e : chain) gst_bin_add(GST_BIN(self), e);
    for (size_t i = 0; i + 1 < chain.size(); ++i) gst_element_link(chain[i], chain[i + 1]);
    GstPad *last_src = gst_element_get_static_pad(chain.back(), "src");
    gst_pad_link(last_src, input->manager_pad);
    gst_object_unref(last_src);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) gst_element_sync_state_with_parent(*it);
    first_sink = gst_element_get_static_pad(chain.front(), "sink");
  }
  gst_ghost_pad_set_target(GST_GHOST_PAD(input->ghost), first_sink);
  gst_object_unref(first_sink);
  input->media_type = media_type;
  input->chain = chain;
  GST_INFO_OBJECT(self, "%s: %s, payloaded once for all viewers", kind, media_type.c_str());
  return true;
}

// An input that ends before it ever had caps carries nothing (a relaysrc
// whose upstream lacks that medium): its viewermanager pad goes, so viewers
// are not kept waiting for it. On another thread: releasing sets elements
// to NULL.
void release_unused_input(GstElement *element, gpointer kind) {
  GstBroadcastSink *self = GST_BROADCAST_SINK(element);
  GstPad *manager_pad = nullptr;
  {
    std::lock_guard<std::mutex> lock(*self->lock);
    Input *input = input_named(self, static_cast<const gchar *>(kind));
    if (input && input->ghost && input->media_type.empty()) std::swap(manager_pad, input->manager_pad);
  }
  if (!manager_pad) return;
  GST_INFO_OBJECT(self, "%s ended without media: viewers are served without it", static_cast<const gchar *>(kind));
  gst_element_release_request_pad(self->manager, manager_pad);
  gst_object_unref(manager_pad);
}

gboolean input_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  GstBroadcastSink *self = GST_BROADCAST_SINK(parent);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    bool unused;
    {
      std::lock_guard<std::mutex> lock(*self->lock);
      Input *input = input_of(self, pad);
      unused = input && input->media_type.empty() && input->manager_pad;
    }
    if (unused) {
      gst_element_call_async(GST_ELEMENT(self), release_unused_input, g_strdup(GST_PAD_NAME(pad)), g_free);
      gst_event_unref(event);
      return TRUE;
    }
  }
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    bool ok;
    {
      std::lock_guard<std::mutex> lock(*self->lock);
      Input *input = input_of(self, pad);
      ok = input && build_chain(self, input, caps);
    }
    if (!ok) {
      gst_event_unref(event);
      return FALSE;
    }
  }
  return gst_pad_event_default(pad, parent, event);
}

gboolean input_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  GstPad *target = gst_ghost_pad_get_target(GST_GHOST_PAD(pad));
  if (target) {
    gst_object_unref(target);
    return gst_pad_query_default(pad, parent, query);
  }
  // No chain yet: answer from what this pad can take.
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      GstCaps *filter, *templ = gst_pad_get_pad_template_caps(pad);
      gst_query_parse_caps(query, &filter);
      GstCaps *result = filter ? gst_caps_intersect_full(filter, templ, GST_CAPS_INTERSECT_FIRST)
                               : gst_caps_ref(templ);
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

GstStructure *add_viewer(GstBroadcastSink *self, const gchar *offer) {
  GstStructure *result = nullptr;
  g_signal_emit_by_name(self->manager, "add-viewer", offer, &result);
  return result;
}

gboolean remove_viewer(GstBroadcastSink *self, const gchar *id) {
  gboolean found = FALSE;
  g_signal_emit_by_name(self->manager, "remove-viewer", id, &found);
  return found;
}

GstStructure *get_viewer_stats(GstBroadcastSink *self, const gchar *id) {
  GstStructure *result = nullptr;
  g_signal_emit_by_name(self->manager, "get-viewer-stats", id, &result);
  return result;
}

GstStructure *get_stats(GstBroadcastSink *self) {
  GstStructure *result = nullptr;
  g_signal_emit_by_name(self->manager, "get-stats", &result);
  return result;
}

gboolean set_viewer_layer(GstBroadcastSink *self, const gchar *id, gint layer) {
  gboolean done = FALSE;
  g_signal_emit_by_name(self->manager, "set-viewer-layer", id, layer, &done);
  return done;
}

}  // namespace

static GstPad *gst_broadcast_sink_request_new_pad(GstElement *element, GstPadTemplate *templ,
                                                  const gchar *name, const GstCaps *) {
  GstBroadcastSink *self = GST_BROADCAST_SINK(element);
  std::string kind = GST_PAD_TEMPLATE_NAME_TEMPLATE(templ);
  std::lock_guard<std::mutex> lock(*self->lock);
  if (kind == "video_%u") {
    unsigned layer = 1;
    if (name) kind = name;
    else
      while (layer + 1 < wb::kMaxLayers && (*self->inputs)[layer].ghost) ++layer;
    if (!name) kind = "video_" + std::to_string(layer);
  }
  Input *input = input_named(self, kind.c_str());
  if (!input || input->ghost) {
    GST_WARNING_OBJECT(self, "no pad %s: video, video_1 to video_%u (after video) and audio, each once", kind.c_str(),
                       wb::kMaxLayers - 1);
    return nullptr;
  }
  // viewermanager's pads have our names.
  input->manager_pad = gst_element_request_pad_simple(self->manager, kind.c_str());
  if (!input->manager_pad) return nullptr;
  input->ghost = gst_ghost_pad_new_no_target_from_template(kind.c_str(), templ);
  gst_pad_set_event_function(input->ghost, input_event);
  gst_pad_set_query_function(input->ghost, input_query);
  gst_pad_set_active(input->ghost, TRUE);
  gst_element_add_pad(element, input->ghost);
  return input->ghost;
}

static void gst_broadcast_sink_release_pad(GstElement *element, GstPad *pad) {
  GstBroadcastSink *self = GST_BROADCAST_SINK(element);
  Input released;
  {
    std::lock_guard<std::mutex> lock(*self->lock);
    Input *input = input_of(self, pad);
    if (!input) return;
    released = *input;
    *input = Input();
  }
  gst_element_remove_pad(element, released.ghost);
  // On dispose the bin has already dropped its children; we hold references.
  for (GstElement *e : released.chain) {
    if (GST_OBJECT_PARENT(e) == GST_OBJECT(self)) {
      gst_element_set_state(e, GST_STATE_NULL);
      gst_bin_remove(GST_BIN(self), e);
    }
    gst_object_unref(e);
  }
  if (!released.manager_pad) return;  // given back already: the input ended unused
  if (GST_OBJECT_PARENT(self->manager) == GST_OBJECT(self))
    gst_element_release_request_pad(self->manager, released.manager_pad);
  gst_object_unref(released.manager_pad);
}

static void gst_broadcast_sink_set_property(GObject *object, guint, const GValue *value,
                                            GParamSpec *pspec) {
  g_object_set_property(G_OBJECT(GST_BROADCAST_SINK(object)->manager), pspec->name, value);
}

static void gst_broadcast_sink_get_property(GObject *object, guint, GValue *value, GParamSpec *pspec) {
  g_object_get_property(G_OBJECT(GST_BROADCAST_SINK(object)->manager), pspec->name, value);
}

static GstStateChangeReturn gst_broadcast_sink_change_state(GstElement *element,
                                                           GstStateChange transition) {
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_broadcast_sink_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_SUCCESS && transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    ret = GST_STATE_CHANGE_NO_PREROLL;
  return ret;
}

static void gst_broadcast_sink_finalize(GObject *object) {
  GstBroadcastSink *self = GST_BROADCAST_SINK(object);
  gst_object_unref(self->manager);
  delete self->inputs;
  delete self->lock;
  G_OBJECT_CLASS(gst_broadcast_sink_parent_class)->finalize(object);
}

static void gst_broadcast_sink_class_init(GstBroadcastSinkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(gst_broadcast_sink_debug, "broadcastsink", 0, "webrtcbroadcast broadcastsink");
  gobject_class->set_property = gst_broadcast_sink_set_property;
  gobject_class->get_property = gst_broadcast_sink_get_property;
  gobject_class->finalize = gst_broadcast_sink_finalize;
  auto specs = wb::viewer_param_specs();
  g_object_class_install_properties(gobject_class, specs.size(), specs.data());
  signals = wb::install_viewer_signals(G_TYPE_FROM_CLASS(klass), G_CALLBACK(add_viewer), G_CALLBACK(remove_viewer),
                                       G_CALLBACK(get_viewer_stats), G_CALLBACK(get_stats),
                                       G_CALLBACK(set_viewer_layer));
  element_class->request_new_pad = gst_broadcast_sink_request_new_pad;
  element_class->release_pad = gst_broadcast_sink_release_pad;
  element_class->change_state = gst_broadcast_sink_change_state;
  /**
   * broadcastsink:video:
   *
   * Encoded video (H.264 byte-stream or avc, VP8, VP9) or RTP of those.
   * Keyframe requests leave this pad upstream as force-key-unit events.
   */
  gst_element_class_add_static_pad_template(element_class, &video_template);
  /**
   * broadcastsink:video_%u:
   *
   * A further layer of the video (simulcast): the same picture encoded
   * again at another size or bitrate (request the `video` pad first).
   * Payloaded once like `video`. Each viewer is sent one layer at a time
   * (`set-viewer-layer`; new viewers get the first layer in the codec they
   * decode) and moves between layers at a keyframe without a gap. A layer
   * may be in another codec (VP8 beside H.264, for browsers without an
   * H.264 decoder); its viewers move only among that codec's layers.
   * Keyframe requests for a layer leave its own pad.
   */
  gst_element_class_add_static_pad_template(element_class, &video_layer_template);
  /**
   * broadcastsink:audio:
   *
   * Opus audio, or Opus RTP.
   */
  gst_element_class_add_static_pad_template(element_class, &audio_template);
  gst_element_class_set_static_metadata(
      element_class, "WebRTC broadcast sink", "Sink/Network/WebRTC",
      "Payloads encoded video/audio once and broadcasts it to many WebRTC viewers (WHEP server, "
      "viewer page, shared fan-out)" WB_VIEWER_SIGNALS_DOC "; " WB_NODE_STATS_DOC,
      "webrtcbroadcast developers");
}

static void gst_broadcast_sink_init(GstBroadcastSink *self) {
  self->lock = new std::mutex();
  self->inputs = new std::array<Input, kInputs>();
  self->manager = gst_element_factory_make("viewermanager", "viewers");
  if (!self->manager) self->manager = GST_ELEMENT(g_object_new(GST_TYPE_VIEWER_MANAGER, "name", "viewers", nullptr));
  gst_object_ref_sink(self->manager);
  gst_bin_add(GST_BIN(self), self->manager);
  g_signal_connect_swapped(self->manager, "viewer-joined", G_CALLBACK(+[](GstBroadcastSink *s, const gchar *id) {
                             g_signal_emit(s, signals.joined, 0, id);
                           }),
                           self);
  g_signal_connect_swapped(self->manager, "viewer-left",
                           G_CALLBACK(+[](GstBroadcastSink *s, const gchar *id, const gchar *reason) {
                             g_signal_emit(s, signals.left, 0, id, reason);
                           }),
                           self);
  g_signal_connect_swapped(self->manager, "authorize",
                           G_CALLBACK(+[](GstBroadcastSink *s, const gchar *method, const gchar *path,
                                          const gchar *authorization, const gchar *remote) -> gboolean {
                             return wb::emit_authorize(GST_ELEMENT(s), signals.authorize, method, path,
                                                       authorization, remote);
                           }),
                           self);
  g_signal_connect_swapped(self->manager, "notify::viewer-count",
                           G_CALLBACK(+[](GstBroadcastSink *s) { g_object_notify(G_OBJECT(s), "viewer-count"); }),
                           self);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}
