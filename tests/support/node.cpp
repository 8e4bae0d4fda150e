// A broadcast node in its own process, for tests that need a real tree of
// separate processes (root, relays): runs one gst-launch description and
// answers on stdin/stdout, so a test can ask what the node's pipeline holds.
//   stdout: "READY" once PLAYING; "ERROR <text>" on a pipeline error.
//   stdin:  "elements" -> "ELEMENTS <factory>:<klass>|..." (recursive),
//           "quit" -> clean stop.
#include <gst/gst.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

namespace {

GMainLoop *loop;

std::string describe_elements(GstBin *bin) {
  std::string out;
  GstIterator *it = gst_bin_iterate_recurse(bin);
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f) {
      const gchar *klass = gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS);
      out += std::string(GST_OBJECT_NAME(f)) + ":" + (klass ? klass : "") + "|";
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s '<gst-launch description>'\n", argv[0]);
    return 2;
  }
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(argv[1], &error);
  if (!pipeline) {
    std::printf("ERROR %s\n", error ? error->message : "cannot parse");
    return 1;
  }
  loop = g_main_loop_new(nullptr, FALSE);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, +[](GstBus *, GstMessage *msg, gpointer) -> gboolean {
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      GError *err = nullptr;
      gst_message_parse_error(msg, &err, nullptr);
      std::printf("ERROR %s\n", err->message);
      std::fflush(stdout);
      g_error_free(err);
      g_main_loop_quit(loop);
    }
    return G_SOURCE_CONTINUE;
  }, nullptr);
  gst_object_unref(bus);
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::printf("ERROR cannot play\n");
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);

  std::thread([pipeline] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line == "elements") {
        std::printf("ELEMENTS %s\n", describe_elements(GST_BIN(pipeline)).c_str());
        std::fflush(stdout);
      } else if (line == "quit") {
        break;
      }
    }
    g_main_loop_quit(loop);
  }).detach();

  g_main_loop_run(loop);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return 0;
}
