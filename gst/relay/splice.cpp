#include "splice.h"

#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video-event.h>

#include <mutex>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_relay_debug

namespace {

constexpr guint kHeaderLen = 12;

// Where the output stream stands, and how the live session maps onto it.
struct SpliceState {
  std::mutex lock;
  GstPad *live = nullptr;  // the newest sink pad (owned by the element)
  bool live_started = false;
  GstSegment live_segment;
  GstCaps *out_caps = nullptr;
  wb::Codec codec = wb::Codec::Unknown;
  guint clock_rate = 90000;
  guint8 out_pt = 96;
  guint32 out_ssrc = 0;
  bool sent_any = false;
  guint16 last_seq = 0;
  guint32 last_ts = 0;
  gint64 last_us = 0;
  guint16 seq_offset = 0;
  guint32 ts_offset = 0;
  unsigned next_pad = 0;
  bool sticky_sent = false;
  std::string path;
  // Serialises the streaming threads of old and new sessions.
  std::mutex stream_lock;
};

}  // namespace

struct _WbSplice {
  GstElement parent;
  GstPad *srcpad;
  SpliceState *state;
};

G_DEFINE_TYPE(WbSplice, wb_splice, GST_TYPE_ELEMENT)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink_%u", GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS("application/x-rtp"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-rtp"));

namespace {

wb::Codec codec_of(const GstCaps *caps) {
  const gchar *name = gst_structure_get_string(gst_caps_get_structure(caps, 0), "encoding-name");
  return wb::codec_from_encoding_name(name ? name : "");
}

// The upstream's caps minus what only held for that session (its SSRC,
// offsets, feedback and extension ids), with our payload type and SSRC.
GstCaps *output_caps(const GstCaps *in, guint8 pt, guint32 ssrc) {
  GstCaps *caps = gst_caps_new_empty();
  GstStructure *s = gst_structure_copy(gst_caps_get_structure(in, 0));
  gst_structure_filter_and_map_in_place(
      s,
      +[](GQuark field, GValue *, gpointer) -> gboolean {
        const gchar *name = g_quark_to_string(field);
        static const char *session_only[] = {"ssrc", "timestamp-offset", "seqnum-offset", "clock-base",
                                             "seqnum-base", "npt-start", "npt-stop", "play-speed",
                                             "play-scale", "onvif-mode"};
        for (const char *f : session_only)
          if (g_str_equal(name, f)) return FALSE;
        return !g_str_has_prefix(name, "rtcp-fb-") && !g_str_has_prefix(name, "extmap-") &&
               !g_str_has_prefix(name, "a-") && !g_str_has_prefix(name, "ssrc-");
      },
      nullptr);
  gst_structure_set(s, "payload", G_TYPE_INT, int(pt), "ssrc", G_TYPE_UINT, ssrc, nullptr);
  gst_caps_append_structure(caps, s);
  return caps;
}

GstEvent *path_event(const std::string &path) {
  return gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
                              gst_structure_new("broadcast-path", "path", G_TYPE_STRING, path.c_str(), nullptr));
}

void send_sticky(WbSplice *self, GstCaps *caps, const std::string &path) {
  gchar *stream_id = gst_pad_create_stream_id(self->srcpad, GST_ELEMENT(self), nullptr);
  gst_pad_push_event(self->srcpad, gst_event_new_stream_start(stream_id));
  g_free(stream_id);
  gst_pad_push_event(self->srcpad, gst_event_new_caps(caps));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_pad_push_event(self->srcpad, gst_event_new_segment(&segment));
  if (!path.empty()) gst_pad_push_event(self->srcpad, path_event(path));
}

// Rewrites one packet onto the output stream; nullptr to drop it.
GstBuffer *splice_packet(WbSplice *self, GstPad *pad, GstBuffer *in) {
  SpliceState &st = *self->state;
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map(in, GST_MAP_READ, &rtp)) return nullptr;
  const guint16 seq = gst_rtp_buffer_get_seq(&rtp);
  const guint32 ts = gst_rtp_buffer_get_timestamp(&rtp);
  const gboolean marker = gst_rtp_buffer_get_marker(&rtp);
  const guint payload_offset = gst_rtp_buffer_get_header_len(&rtp);
  const guint payload_len = gst_rtp_buffer_get_payload_len(&rtp);
  gst_rtp_buffer_unmap(&rtp);

  const gint64 now = g_get_monotonic_time();
  guint16 out_seq;
  guint32 out_ts;
  GstClockTime pts = GST_BUFFER_PTS(in);
  {
    std::lock_guard<std::mutex> lock(st.lock);
    if (pad != st.live) return nullptr;
    if (!st.live_started) {
      st.live_started = true;
      if (st.sent_any) {
        // Continue the numbering, and let timestamps advance by the gap so
        // the viewers' jitter buffers see a pause, not a jump back in time.
        guint32 gap_ticks = guint32(gst_util_uint64_scale(now - st.last_us, st.clock_rate, G_USEC_PER_SEC));
        st.seq_offset = guint16(st.last_seq + 1 - seq);
        st.ts_offset = st.last_ts + MAX(gap_ticks, 1u) - ts;
        GST_INFO_OBJECT(self, "new upstream session after %.0f ms: seq offset %u ts offset %u",
                        (now - st.last_us) / 1000.0, st.seq_offset, st.ts_offset);
      }
    }
    out_seq = guint16(seq + st.seq_offset);
    out_ts = ts + st.ts_offset;
    st.sent_any = true;
    st.last_seq = out_seq;
    st.last_ts = out_ts;
    st.last_us = now;
    if (GST_CLOCK_TIME_IS_VALID(pts))
      pts = gst_segment_to_running_time(&st.live_segment, GST_FORMAT_TIME, pts);
  }

  GstBuffer *out = gst_buffer_new();
  GstMemory *header = gst_allocator_alloc(nullptr, kHeaderLen, nullptr);
  GstMapInfo map;
  gst_memory_map(header, &map, GST_MAP_WRITE);
  map.data[0] = 0x80;  // version 2, no padding, no extension, no CSRC
  map.data[1] = guint8((marker ? 0x80 : 0) | (self->state->out_pt & 0x7f));
  GST_WRITE_UINT16_BE(map.data + 2, out_seq);
  GST_WRITE_UINT32_BE(map.data + 4, out_ts);
  GST_WRITE_UINT32_BE(map.data + 8, self->state->out_ssrc);
  gst_memory_unmap(header, &map);
  gst_buffer_append_memory(out, header);
  gst_buffer_copy_into(out, in, GstBufferCopyFlags(GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_FLAGS),
                       payload_offset, payload_len);
  GST_BUFFER_PTS(out) = pts;
  return out;
}

GstFlowReturn sink_chain(GstPad *pad, GstObject *parent, GstBuffer *buffer) {
  WbSplice *self = WB_SPLICE(parent);
  std::lock_guard<std::mutex> stream(self->state->stream_lock);
  GstBuffer *out = splice_packet(self, pad, buffer);
  gst_buffer_unref(buffer);
  // An upstream session's flow never depends on our downstream: a dead
  // session must not be told to stop while the next one takes over.
  if (out) gst_pad_push(self->srcpad, out);
  return GST_FLOW_OK;
}

GstFlowReturn sink_chain_list(GstPad *pad, GstObject *parent, GstBufferList *list) {
  WbSplice *self = WB_SPLICE(parent);
  std::lock_guard<std::mutex> stream(self->state->stream_lock);
  GstBufferList *out = gst_buffer_list_new_sized(gst_buffer_list_length(list));
  for (guint i = 0; i < gst_buffer_list_length(list); ++i) {
    GstBuffer *b = splice_packet(self, pad, gst_buffer_list_get(list, i));
    if (b) gst_buffer_list_add(out, b);
  }
  gst_buffer_list_unref(list);
  if (gst_buffer_list_length(out)) gst_pad_push_list(self->srcpad, out);
  else gst_buffer_list_unref(out);
  return GST_FLOW_OK;
}

gboolean sink_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  WbSplice *self = WB_SPLICE(parent);
  SpliceState &st = *self->state;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      // Held across the state change and the sticky events it sends, so no
      // path event can overtake them.
      std::lock_guard<std::mutex> stream(st.stream_lock);
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      wb::Codec codec = codec_of(caps);
      GstCaps *first = nullptr;
      std::string path;
      {
        std::lock_guard<std::mutex> lock(st.lock);
        if (st.codec == wb::Codec::Unknown && codec != wb::Codec::Unknown) {
          st.codec = codec;
          gint rate = 0, pt = 96;
          const GstStructure *s = gst_caps_get_structure(caps, 0);
          if (gst_structure_get_int(s, "clock-rate", &rate) && rate > 0) st.clock_rate = guint(rate);
          gst_structure_get_int(s, "payload", &pt);
          st.out_pt = guint8(pt);
          st.out_caps = output_caps(caps, st.out_pt, st.out_ssrc);
          first = gst_caps_ref(st.out_caps);
          path = st.path;
          st.sticky_sent = true;
        } else if (codec != st.codec && pad == st.live) {
          GST_WARNING_OBJECT(self, "upstream switched codec (%" GST_PTR_FORMAT "); dropping it", caps);
          st.live = nullptr;
        }
      }
      if (first) {
        GST_INFO_OBJECT(self, "output caps %" GST_PTR_FORMAT, first);
        send_sticky(self, first, path);
        gst_caps_unref(first);
      }
      gst_event_unref(event);
      return TRUE;
    }
    case GST_EVENT_SEGMENT: {
      std::lock_guard<std::mutex> lock(st.lock);
      if (pad == st.live) gst_event_copy_segment(event, &st.live_segment);
      gst_event_unref(event);
      return TRUE;
    }
    case GST_EVENT_CUSTOM_DOWNSTREAM:
      // The upstream's answer to a keyframe request is not ours to forward:
      // the fan-out sees keyframes in the packets themselves.
      gst_event_unref(event);
      return TRUE;
    default:
      // stream-start, EOS, flushes, tags, gaps: they describe one upstream
      // session, not the stream our viewers watch.
      gst_event_unref(event);
      return TRUE;
  }
}

GstPad *live_pad(WbSplice *self) {
  std::lock_guard<std::mutex> lock(self->state->lock);
  return self->state->live ? GST_PAD(gst_object_ref(self->state->live)) : nullptr;
}

gboolean src_event(GstPad *, GstObject *parent, GstEvent *event) {
  WbSplice *self = WB_SPLICE(parent);
  if (gst_video_event_is_force_key_unit(event)) {
    GstPad *live = live_pad(self);
    if (live) {
      GST_DEBUG_OBJECT(self, "keyframe request to the upstream");
      gboolean ok = gst_pad_push_event(live, event);
      gst_object_unref(live);
      return ok;
    }
  }
  gst_event_unref(event);
  return TRUE;
}

gboolean src_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  WbSplice *self = WB_SPLICE(parent);
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      GstCaps *caps = nullptr;
      {
        std::lock_guard<std::mutex> lock(self->state->lock);
        if (self->state->out_caps) caps = gst_caps_ref(self->state->out_caps);
      }
      if (!caps) caps = gst_pad_get_pad_template_caps(pad);
      gst_query_set_caps_result(query, caps);
      gst_caps_unref(caps);
      return TRUE;
    }
    case GST_QUERY_LATENCY: {
      GstPad *live = live_pad(self);
      gboolean ok = FALSE;
      if (live) {
        ok = gst_pad_peer_query(live, query);
        gst_object_unref(live);
      }
      if (!ok) gst_query_set_latency(query, TRUE, 0, GST_CLOCK_TIME_NONE);
      return TRUE;
    }
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

gboolean sink_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      // The codec check happens in splice_attach(), with a clear log line.
      GstCaps *caps = gst_pad_get_pad_template_caps(pad);
      gst_query_set_caps_result(query, caps);
      gst_caps_unref(caps);
      return TRUE;
    }
    case GST_QUERY_ACCEPT_CAPS:
      gst_query_set_accept_caps_result(query, TRUE);
      return TRUE;
    case GST_QUERY_ALLOCATION:
      return FALSE;
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

}  // namespace

static void wb_splice_finalize(GObject *object) {
  WbSplice *self = WB_SPLICE(object);
  if (self->state->out_caps) gst_caps_unref(self->state->out_caps);
  delete self->state;
  G_OBJECT_CLASS(wb_splice_parent_class)->finalize(object);
}

static void wb_splice_class_init(WbSpliceClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->finalize = wb_splice_finalize;
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Relay splice", "Filter/Network/RTP",
      "Joins successive upstream RTP sessions into one continuous stream", "webrtcbroadcast developers");
}

static void wb_splice_init(WbSplice *self) {
  self->state = new SpliceState();
  self->state->out_ssrc = g_random_int();
  gst_segment_init(&self->state->live_segment, GST_FORMAT_TIME);
  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_event_function(self->srcpad, src_event);
  gst_pad_set_query_function(self->srcpad, src_query);
  gst_pad_use_fixed_caps(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

namespace wb {

bool splice_attach(WbSplice *splice, GstPad *upstream) {
  SpliceState &st = *splice->state;
  GstCaps *caps = gst_pad_get_current_caps(upstream);
  if (caps) {
    Codec codec = codec_of(caps);
    gst_caps_unref(caps);
    std::lock_guard<std::mutex> lock(st.lock);
    if (st.codec != Codec::Unknown && codec != st.codec) {
      GST_WARNING_OBJECT(splice, "upstream sends %s, but our viewers get %s", codec_encoding_name(codec),
                         codec_encoding_name(st.codec));
      return false;
    }
  }
  unsigned id;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    id = st.next_pad++;
  }
  gchar *name = g_strdup_printf("sink_%u", id);
  GstPad *pad = gst_pad_new_from_static_template(&sink_template, name);
  g_free(name);
  gst_pad_set_chain_function(pad, sink_chain);
  gst_pad_set_chain_list_function(pad, sink_chain_list);
  gst_pad_set_event_function(pad, sink_event);
  gst_pad_set_query_function(pad, sink_query);
  gst_pad_set_active(pad, TRUE);
  gst_element_add_pad(GST_ELEMENT(splice), pad);
  {
    std::lock_guard<std::mutex> lock(st.lock);
    st.live = pad;
    st.live_started = false;
    gst_segment_init(&st.live_segment, GST_FORMAT_TIME);
  }
  if (GST_PAD_LINK_FAILED(gst_pad_link(upstream, pad))) {
    GST_WARNING_OBJECT(splice, "could not link %" GST_PTR_FORMAT, upstream);
    std::lock_guard<std::mutex> lock(st.lock);
    st.live = nullptr;
    return false;
  }
  return true;
}

void splice_detach_all(WbSplice *splice) {
  SpliceState &st = *splice->state;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    st.live = nullptr;
  }
  GList *pads = nullptr;
  GST_OBJECT_LOCK(splice);
  for (GList *l = GST_ELEMENT(splice)->sinkpads; l; l = l->next)
    pads = g_list_prepend(pads, gst_object_ref(l->data));
  GST_OBJECT_UNLOCK(splice);
  for (GList *l = pads; l; l = l->next) {
    GstPad *pad = GST_PAD(l->data);
    GstPad *peer = gst_pad_get_peer(pad);
    if (peer) {
      gst_pad_unlink(peer, pad);
      gst_object_unref(peer);
    }
    gst_pad_set_active(pad, FALSE);
    gst_element_remove_pad(GST_ELEMENT(splice), pad);
  }
  g_list_free_full(pads, gst_object_unref);
}

Codec splice_codec(WbSplice *splice) {
  std::lock_guard<std::mutex> lock(splice->state->lock);
  return splice->state->codec;
}

gint64 splice_last_packet_us(WbSplice *splice) {
  std::lock_guard<std::mutex> lock(splice->state->lock);
  return splice->state->sent_any ? splice->state->last_us : 0;
}

void splice_set_path(WbSplice *splice, const std::string &path) {
  std::lock_guard<std::mutex> stream(splice->state->stream_lock);
  {
    std::lock_guard<std::mutex> lock(splice->state->lock);
    if (splice->state->path == path) return;
    splice->state->path = path;
    if (!splice->state->sticky_sent) return;
  }
  gst_pad_push_event(splice->srcpad, path_event(path));
}

void splice_send_eos(WbSplice *splice) {
  {
    std::lock_guard<std::mutex> lock(splice->state->lock);
    splice->state->live = nullptr;
  }
  std::lock_guard<std::mutex> stream(splice->state->stream_lock);
  gst_pad_push_event(splice->srcpad, gst_event_new_eos());
}

}  // namespace wb
