// GoogleTest main for suites that need GStreamer: registers our elements
// from the linked core (no GST_PLUGIN_PATH needed). All three: were one
// missing, making it would load the plugin (GST_PLUGIN_PATH is set for the
// child processes), whose plugin_init registers the other two again; that
// frees the factories registered here while their element classes still
// point to them (gst_element_get_factory() then reads freed memory, which
// ASan reports).
#include <gst/gst.h>
#include <gtest/gtest.h>

#include "broadcastsink.h"
#include "relaysrc.h"
#include "viewermanager.h"

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  gst_element_register(nullptr, "viewermanager", GST_RANK_NONE, GST_TYPE_VIEWER_MANAGER);
  gst_element_register(nullptr, "broadcastsink", GST_RANK_NONE, GST_TYPE_BROADCAST_SINK);
  gst_element_register(nullptr, "relaysrc", GST_RANK_NONE, GST_TYPE_RELAY_SRC);
  ::testing::InitGoogleTest(&argc, argv);
  int ret = RUN_ALL_TESTS();
  gst_deinit();
  return ret;
}
