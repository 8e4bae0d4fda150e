// broadcastsink: the broadcast tee-sink. Takes encoded video and audio,
// payloads each ONCE, and serves them to every WebRTC viewer through its
// viewermanager.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS
#define GST_TYPE_BROADCAST_SINK (gst_broadcast_sink_get_type())
G_DECLARE_FINAL_TYPE(GstBroadcastSink, gst_broadcast_sink, GST, BROADCAST_SINK, GstBin)
G_END_DECLS
