// broadcastsink and viewermanager as elements: their manual, the chain
// they build for each input, and how they end.
#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video-event.h>
#include <gtest/gtest.h>

#include <mutex>

#include <functional>
#include <string>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

// Runs a launch line to EOS (or error); returns the error text, "" on EOS.
std::string run_to_eos(GstElement *pipeline) {
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  const auto deadline = wbtest::scaled(std::chrono::seconds(15));
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, deadline.count() * GST_MSECOND,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  std::string result = msg ? "" : "timed out waiting for EOS";
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err;
    gst_message_parse_error(msg, &err, nullptr);
    result = err->message;
    g_error_free(err);
  }
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  return result;
}

unsigned count_elements(GstBin *bin, const std::function<bool(GstElement *)> &match) {
  unsigned n = 0;
  GstIterator *it = gst_bin_iterate_recurse(bin);
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    if (match(GST_ELEMENT(g_value_get_object(&item)))) ++n;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

unsigned count_factory(GstBin *bin, const char *factory_name) {
  return count_elements(bin, [&](GstElement *e) {
    GstElementFactory *f = gst_element_get_factory(e);
    return f && g_str_equal(GST_OBJECT_NAME(f), factory_name);
  });
}

unsigned count_klass(GstBin *bin, const char *klass_word) {
  return count_elements(bin, [&](GstElement *e) {
    const gchar *klass = gst_element_class_get_metadata(GST_ELEMENT_GET_CLASS(e), GST_ELEMENT_METADATA_KLASS);
    return klass && strstr(klass, klass_word);
  });
}

}  // namespace

TEST(Manual, EveryPropertySignalAndPadIsDocumented) {
  for (const char *name : {"broadcastsink", "viewermanager"}) {
    GstElement *e = gst_element_factory_make(name, nullptr);
    ASSERT_TRUE(e) << name;
    guint n = 0;
    GParamSpec **specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
    for (const char *required : {"port", "address", "max-viewers", "stun-server", "turn-servers",
                                 "keyframe-min-interval", "viewer-count", "ice-address", "viewer-timeout"})
      EXPECT_TRUE(g_object_class_find_property(G_OBJECT_GET_CLASS(e), required)) << name << " lacks " << required;
    for (guint i = 0; i < n; ++i) {
      const gchar *blurb = g_param_spec_get_blurb(specs[i]);
      EXPECT_TRUE(blurb && strlen(blurb) > 10) << name << "::" << specs[i]->name;
    }
    g_free(specs);
    const std::string description =
        gst_element_class_get_metadata(GST_ELEMENT_GET_CLASS(e), GST_ELEMENT_METADATA_DESCRIPTION);
    for (const char *signal : {"add-viewer", "remove-viewer", "get-viewer-stats", "viewer-joined", "viewer-left"}) {
      EXPECT_NE(g_signal_lookup(signal, G_OBJECT_TYPE(e)), 0u) << name << " lacks signal " << signal;
      EXPECT_NE(description.find(signal), std::string::npos) << name << " does not describe " << signal;
    }
    EXPECT_TRUE(gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(e), "video"));
    EXPECT_TRUE(gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(e), "audio"));
    gst_object_unref(e);
  }
}

TEST(ViewerStats, UnknownIdGivesNull) {
  for (const char *name : {"broadcastsink", "viewermanager"}) {
    GstElement *e = gst_element_factory_make(name, nullptr);
    ASSERT_TRUE(e) << name;
    for (const char *id : {"0123456789abcdef0123456789abcdef", "", static_cast<const char *>(nullptr)}) {
      GstStructure *stats = nullptr;
      g_signal_emit_by_name(e, "get-viewer-stats", id, &stats);
      EXPECT_EQ(stats, nullptr) << name << " has stats for " << (id ? id : "NULL");
      if (stats) gst_structure_free(stats);
    }
    gst_object_unref(e);
  }
}

TEST(Manual, RelaySrcPropertiesAndPadsAreDocumented) {
  GstElement *e = gst_element_factory_make("relaysrc", nullptr);
  ASSERT_TRUE(e);
  for (const char *required : {"location", "whip-port", "whip-address", "token", "advertise-url", "node-id",
                               "upstream-timeout", "upstream-state", "reconnects", "latency", "ice-address"})
    EXPECT_TRUE(g_object_class_find_property(G_OBJECT_GET_CLASS(e), required)) << "relaysrc lacks " << required;
  guint n = 0;
  GParamSpec **specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
  for (guint i = 0; i < n; ++i) {
    const gchar *blurb = g_param_spec_get_blurb(specs[i]);
    EXPECT_TRUE(blurb && strlen(blurb) > 10) << "relaysrc::" << specs[i]->name;
  }
  g_free(specs);
  for (const char *pad : {"video", "audio"}) {
    GstPadTemplate *t = gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(e), pad);
    ASSERT_TRUE(t) << pad;
    EXPECT_EQ(GST_PAD_TEMPLATE_PRESENCE(t), GST_PAD_SOMETIMES);
  }
  // Neither a location nor a WHIP port: a clear error, not a silent source.
  GstElement *pipeline = gst_pipeline_new(nullptr);
  gst_bin_add(GST_BIN(pipeline), e);
  EXPECT_EQ(gst_element_set_state(pipeline, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_timed_pop_filtered(GST_ELEMENT_BUS(pipeline), 0, GST_MESSAGE_ERROR);
  EXPECT_TRUE(msg);
  if (msg) gst_message_unref(msg);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

struct ChainCase {
  const char *launch;
  const char *payloader;
};

class PayloadOnce : public ::testing::TestWithParam<ChainCase> {};

TEST_P(PayloadOnce, InputIsPayloadedOnceAndNeverDecodedOrEncoded) {
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(GetParam().launch, &error);
  ASSERT_TRUE(pipeline) << (error ? error->message : "");
  GstBin *sink = GST_BIN(gst_bin_get_by_name(GST_BIN(pipeline), "bs"));
  EXPECT_EQ(run_to_eos(pipeline), "");
  if (GetParam().payloader) {
    EXPECT_EQ(count_factory(sink, GetParam().payloader), 1u);
  }
  EXPECT_EQ(count_klass(sink, "Encoder"), 0u);
  EXPECT_EQ(count_klass(sink, "Decoder"), 0u);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, PayloadOnce,
    ::testing::Values(
        ChainCase{"videotestsrc num-buffers=20 ! x264enc ! video/x-h264,stream-format=byte-stream ! broadcastsink name=bs",
                  "rtph264pay"},
        ChainCase{"videotestsrc num-buffers=20 ! x264enc ! video/x-h264,stream-format=avc ! broadcastsink name=bs",
                  "rtph264pay"},
        ChainCase{"videotestsrc num-buffers=20 ! vp8enc deadline=1 ! broadcastsink name=bs", "rtpvp8pay"},
        ChainCase{"videotestsrc num-buffers=20 ! vp9enc deadline=1 ! broadcastsink name=bs", "rtpvp9pay"},
        ChainCase{"audiotestsrc num-buffers=20 ! opusenc ! bs.audio broadcastsink name=bs", "rtpopuspay"},
        ChainCase{"videotestsrc num-buffers=20 ! x264enc ! rtph264pay ! broadcastsink name=bs", nullptr},
        ChainCase{"videotestsrc num-buffers=20 ! x264enc ! bs.video audiotestsrc num-buffers=30 ! opusenc ! "
                  "bs.audio broadcastsink name=bs",
                  "rtph264pay"}));

TEST(BroadcastSink, RtpInputGetsNoPayloader) {
  GstElement *pipeline =
      gst_parse_launch("videotestsrc num-buffers=10 ! x264enc ! rtph264pay ! broadcastsink name=bs", nullptr);
  GstBin *sink = GST_BIN(gst_bin_get_by_name(GST_BIN(pipeline), "bs"));
  EXPECT_EQ(run_to_eos(pipeline), "");
  EXPECT_EQ(count_factory(sink, "rtph264pay"), 0u);
  EXPECT_EQ(count_factory(sink, "h264parse"), 0u);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

TEST(BroadcastSink, UnsupportedInputIsRefusedAtLinkTime) {
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch("audiotestsrc ! broadcastsink name=bs", &error);
  EXPECT_TRUE(error != nullptr) << "raw audio must not link";
  if (error) g_error_free(error);
  if (pipeline) gst_object_unref(pipeline);
}

// Counts packets whose marker bit claimed the end of a frame that then went on.
struct MarkerCheck {
  std::mutex mutex;
  bool have_last = false;
  guint32 last_ts = 0;
  bool last_marker = false;
  unsigned early_markers = 0;
  unsigned packets = 0;

  void inspect(GstBuffer *buf) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp)) return;
    std::lock_guard<std::mutex> lock(mutex);
    guint32 ts = gst_rtp_buffer_get_timestamp(&rtp);
    if (have_last && last_marker && ts == last_ts) ++early_markers;
    have_last = true;
    last_ts = ts;
    last_marker = gst_rtp_buffer_get_marker(&rtp);
    ++packets;
    gst_rtp_buffer_unmap(&rtp);
  }
};

// A forced keyframe must come out as one access unit: the marker bit only on
// its last packet. (rtph264pay 1.22 marks separately sent SPS/PPS, which
// Chromium drops as a frame and answers with PLI, forever.)
TEST(BroadcastSink, ForcedH264KeyframeHasOneMarkerPerAccessUnit) {
  GstElement *pipeline = gst_parse_launch(
      "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc tune=zerolatency key-int-max=300 ! broadcastsink name=bs",
      nullptr);
  GstBin *sink = GST_BIN(gst_bin_get_by_name(GST_BIN(pipeline), "bs"));
  GstElement *fanout = gst_bin_get_by_name(sink, "video-fanout");
  ASSERT_TRUE(fanout);
  GstPad *fanout_sink = gst_element_get_static_pad(fanout, "sink");
  MarkerCheck seen;
  gst_pad_add_probe(
      fanout_sink, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      +[](GstPad *, GstPadProbeInfo *info, gpointer data) {
        auto *s = static_cast<MarkerCheck *>(data);
        if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
          s->inspect(GST_PAD_PROBE_INFO_BUFFER(info));
        } else {
          GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
          for (guint i = 0; i < gst_buffer_list_length(list); ++i) s->inspect(gst_buffer_list_get(list, i));
        }
        return GST_PAD_PROBE_OK;
      },
      &seen, nullptr);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  ASSERT_TRUE(wait_until([&] { std::lock_guard<std::mutex> l(seen.mutex); return seen.packets > 20; }, 5000ms));
  for (int i = 0; i < 3; ++i) {
    // What the fan-out sends when viewers need a keyframe.
    gst_pad_push_event(fanout_sink, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, i));
    unsigned until = 0;
    {
      std::lock_guard<std::mutex> l(seen.mutex);
      until = seen.packets + 15;
    }
    ASSERT_TRUE(wait_until([&] { std::lock_guard<std::mutex> l(seen.mutex); return seen.packets > until; }, 5000ms));
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  EXPECT_EQ(seen.early_markers, 0u) << "a packet with the marker bit was followed by more of the same frame";
  gst_object_unref(fanout_sink);
  gst_object_unref(fanout);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}
