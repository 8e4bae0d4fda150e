// The webrtcbroadcast plugin: registers its elements, nothing else.
#include <gst/gst.h>

#include "broadcastsink.h"
#include "relaysrc.h"
#include "viewermanager.h"

static gboolean plugin_init(GstPlugin *plugin) {
  return gst_element_register(plugin, "viewermanager", GST_RANK_NONE, GST_TYPE_VIEWER_MANAGER) &&
         gst_element_register(plugin, "broadcastsink", GST_RANK_NONE, GST_TYPE_BROADCAST_SINK) &&
         gst_element_register(plugin, "relaysrc", GST_RANK_NONE, GST_TYPE_RELAY_SRC);
}

#define PACKAGE "webrtcbroadcast"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, webrtcbroadcast,
                  "Scalable one-to-many WebRTC broadcasting: broadcastsink, viewermanager, relaysrc",
                  plugin_init, "0.1.0", "LGPL", "webrtcbroadcast", "https://example.invalid/webrtcbroadcast")
