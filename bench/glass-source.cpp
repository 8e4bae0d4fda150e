// Runs a gst-launch description in which raw video passes an element named
// "stamp" (identity), and paints into each frame there the wall-clock time
// it was captured: a live source pushes a frame when its time has come, so
// the moment it passes is its capture. bench/av-delay.mjs reads the time
// back from every frame Chromium presents: glass to glass, on one clock.
//
// The picture: the first 80 rows hold two rows of 16 squares (width / 16
// wide, 40 rows high), black for 0, white for 1, most significant bit first:
// 24 bits of milliseconds since the epoch (modulo 2^24) and an 8-bit check
// (the three bytes summed, xor 0xA5), so a frame the encoder smeared is
// discarded rather than misread. Raw video must be I420.
//
//   glass-source "videotestsrc is-live=true ! video/x-raw,format=I420,... !
//                 identity name=stamp ! x264enc ! bs.video ... broadcastsink name=bs"
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdio>
#include <cstring>

namespace {

constexpr int kCells = 16;
constexpr int kCellHeight = 40;
constexpr guint8 kBlack = 16, kWhite = 235;

guint32 stamp_word(gint64 unix_ms) {
  const guint32 ms = guint32(unix_ms) & 0xffffffu;
  const guint8 check = guint8(((ms >> 16) + (ms >> 8) + ms) & 0xff) ^ 0xA5;
  return ms << 8 | check;
}

void paint(GstVideoFrame *frame, guint32 word) {
  auto *y = static_cast<guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(frame, 0));
  const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
  const int width = GST_VIDEO_FRAME_WIDTH(frame);
  const int cell_width = width / kCells;
  if (GST_VIDEO_FRAME_HEIGHT(frame) < 2 * kCellHeight || cell_width < 4) return;
  for (int bit = 0; bit < 32; ++bit) {
    const guint8 value = (word >> (31 - bit)) & 1 ? kWhite : kBlack;
    const int x0 = (bit % kCells) * cell_width, y0 = (bit / kCells) * kCellHeight;
    for (int row = y0; row < y0 + kCellHeight; ++row) memset(y + row * stride + x0, value, cell_width);
  }
  // Chroma of the stamped rows neutral, so the squares stay grey levels.
  for (int plane = 1; plane < 3; ++plane) {
    auto *c = static_cast<guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(frame, plane));
    const int cstride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, plane);
    for (int row = 0; row < kCellHeight; ++row) memset(c + row * cstride, 128, GST_VIDEO_FRAME_COMP_WIDTH(frame, plane));
  }
}

GstPadProbeReturn on_frame(GstPad *pad, GstPadProbeInfo *info, gpointer) {
  const gint64 now_ms = g_get_real_time() / 1000;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  GstVideoInfo vinfo;
  const bool ok = caps && gst_video_info_from_caps(&vinfo, caps) && GST_VIDEO_INFO_FORMAT(&vinfo) == GST_VIDEO_FORMAT_I420;
  if (caps) gst_caps_unref(caps);
  if (!ok) return GST_PAD_PROBE_OK;
  GstBuffer *buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buffer;
  GstVideoFrame frame;
  if (gst_video_frame_map(&frame, &vinfo, buffer, GST_MAP_WRITE)) {
    paint(&frame, stamp_word(now_ms));
    gst_video_frame_unmap(&frame);
  }
  return GST_PAD_PROBE_OK;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s LAUNCH-LINE (raw I420 video through identity name=stamp)\n", argv[0]);
    return 2;
  }
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(argv[1], &error);
  if (!pipeline) {
    std::fprintf(stderr, "%s\n", error ? error->message : "could not parse the launch line");
    return 1;
  }
  GstElement *stamp = gst_bin_get_by_name(GST_BIN(pipeline), "stamp");
  if (!stamp) {
    std::fprintf(stderr, "no element named stamp in the launch line\n");
    return 1;
  }
  GstPad *src = gst_element_get_static_pad(stamp, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_frame, nullptr, nullptr);
  gst_object_unref(src);
  gst_object_unref(stamp);

  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  auto quit = +[](gpointer data) -> gboolean {
    g_main_loop_quit(static_cast<GMainLoop *>(data));
    return G_SOURCE_REMOVE;
  };
  g_unix_signal_add(SIGINT, quit, loop);
  g_unix_signal_add(SIGTERM, quit, loop);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, +[](GstBus *, GstMessage *message, gpointer data) -> gboolean {
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
      GError *err = nullptr;
      gst_message_parse_error(message, &err, nullptr);
      std::fprintf(stderr, "error: %s\n", err->message);
      g_error_free(err);
      g_main_loop_quit(static_cast<GMainLoop *>(data));
    }
    return G_SOURCE_CONTINUE;
  }, loop);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  g_main_loop_run(loop);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  g_main_loop_unref(loop);
  return 0;
}
