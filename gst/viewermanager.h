// viewermanager: a bin that serves already-payloaded RTP to many WebRTC
// viewers (one webrtcbin each), with its WHEP server and action signals.
#pragma once

#include <gst/gst.h>

#include <vector>

G_BEGIN_DECLS
#define GST_TYPE_VIEWER_MANAGER (gst_viewer_manager_get_type())
G_DECLARE_FINAL_TYPE(GstViewerManager, gst_viewer_manager, GST, VIEWER_MANAGER, GstBin)
G_END_DECLS

namespace wb {

// The viewer-facing properties, shared by viewermanager and broadcastsink
// (which forwards them); ids start at 1 in this order.
enum ViewerProperty : guint {
  PROP_PORT = 1,
  PROP_ADDRESS,
  PROP_MAX_VIEWERS,
  PROP_STUN_SERVER,
  PROP_TURN_SERVERS,
  PROP_KEYFRAME_MIN_INTERVAL,
  PROP_ICE_ADDRESS,
  PROP_VIEWER_TIMEOUT,
  PROP_VIEWER_COUNT,
  PROP_BYTES_SENT,
  PROP_KEYFRAME_REQUESTS,
  PROP_RETRANSMISSIONS,
  PROP_PUSH_URL,
  PROP_PUSH_TOKEN,
  PROP_PUSH_STATE,
  PROP_CHILDREN,
  PROP_NODE_PATH,
  PROP_DIRECT_SEND,
  PROP_DIRECT_VIEWERS,
  PROP_ICE_LITE,
  PROP_ICE_LITE_PORT,
  N_VIEWER_PROPERTIES
};

// Fresh param specs (one set per class that installs them).
std::vector<GParamSpec *> viewer_param_specs();

// Registers add-viewer / remove-viewer / viewer-joined / viewer-left on a
// class; returns the ids {joined, left}. Handlers of the action signals are
// the given callbacks.
struct ViewerSignalIds {
  guint joined;
  guint left;
};
ViewerSignalIds install_viewer_signals(GType type, GCallback add_viewer, GCallback remove_viewer);

}  // namespace wb
