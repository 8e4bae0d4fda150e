// broadcastsink: the broadcast tee-sink. A viewermanager that also takes
// encoded video and audio, and payloads each ONCE for every viewer.
#pragma once

#include "viewermanager.h"

G_BEGIN_DECLS
#define GST_TYPE_BROADCAST_SINK (gst_broadcast_sink_get_type())
G_DECLARE_FINAL_TYPE(GstBroadcastSink, gst_broadcast_sink, GST, BROADCAST_SINK, GstViewerManager)
G_END_DECLS
