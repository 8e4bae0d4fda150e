/**
 * SECTION:element-broadcastsink
 * @title: broadcastsink
 *
 * Broadcasts one encoded stream to many WebRTC viewers. Each input is parsed
 * and payloaded once (H.264, VP8, VP9, Opus; already-payloaded RTP passes
 * through untouched) and shared with every viewer (on one shared ICE-lite
 * UDP port): a viewer costs encryption and sending, never encoding. It is
 * a viewermanager (it inherits every property and signal) that also takes
 * encoded media. Viewers join with WHEP (`POST /whep` on `port`) or the
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

#include <string>
#include <vector>

#include <gst/video/video-event.h>

#include "viewer/nodestats.h"

GST_DEBUG_CATEGORY_STATIC(gst_broadcast_sink_debug);
#define GST_CAT_DEFAULT gst_broadcast_sink_debug

struct _GstBroadcastSink {
  GstViewerManager parent;
};

G_DEFINE_TYPE(GstBroadcastSink, gst_broadcast_sink, GST_TYPE_VIEWER_MANAGER)

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

// The one place where encoded media becomes RTP (viewermanager's
// input_chain): RTP input (a relay) is forwarded as it is.
gboolean input_chain(GstViewerManager *self, const gchar *pad_name, const GstCaps *caps, GPtrArray *out) {
  const std::string media_type = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  if (media_type == "application/x-rtp") return TRUE;
  std::vector<GstElement *> chain = payload_chain(media_type, pad_name);
  if (chain.empty()) {
    GST_ELEMENT_ERROR(self, STREAM, WRONG_TYPE, ("Unsupported input"), ("%s: caps %s", pad_name, media_type.c_str()));
    return FALSE;
  }
  for (GstElement *e : chain) {
    if (!e) {
      for (GstElement *made : chain)
        if (made) gst_object_unref(gst_object_ref_sink(made));
      GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("Missing parser or payloader for %s", media_type.c_str()),
                        (nullptr));
      return FALSE;
    }
  }
  for (GstElement *e : chain) g_ptr_array_add(out, e);
  return TRUE;
}

}  // namespace

// Everything but what its inputs take is viewermanager's: properties,
// signals, pads' behaviour (the templates below replace its RTP-only ones).
static void gst_broadcast_sink_class_init(GstBroadcastSinkClass *klass) {
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(gst_broadcast_sink_debug, "broadcastsink", 0, "webrtcbroadcast broadcastsink");
  GST_VIEWER_MANAGER_CLASS(klass)->input_chain = input_chain;
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

static void gst_broadcast_sink_init(GstBroadcastSink *) {}
