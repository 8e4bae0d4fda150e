// GoogleTest main for suites that need GStreamer: registers our elements
// from the linked core (no GST_PLUGIN_PATH needed).
#include <gst/gst.h>
#include <gtest/gtest.h>

#include "broadcastsink.h"
#include "viewermanager.h"

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  gst_element_register(nullptr, "viewermanager", GST_RANK_NONE, GST_TYPE_VIEWER_MANAGER);
  gst_element_register(nullptr, "broadcastsink", GST_RANK_NONE, GST_TYPE_BROADCAST_SINK);
  ::testing::InitGoogleTest(&argc, argv);
  int ret = RUN_ALL_TESTS();
  gst_deinit();
  return ret;
}
