#include "debug.h"

GST_DEBUG_CATEGORY(wb_viewer_debug);
GST_DEBUG_CATEGORY(wb_signalling_debug);
GST_DEBUG_CATEGORY(wb_peer_debug);
GST_DEBUG_CATEGORY(wb_relay_debug);
GST_DEBUG_CATEGORY(wb_push_debug);

namespace wb {

void debug_init() {
  static gsize done = 0;
  if (g_once_init_enter(&done)) {
    GST_DEBUG_CATEGORY_INIT(wb_viewer_debug, "broadcastviewer", 0, "webrtcbroadcast viewer sessions");
    GST_DEBUG_CATEGORY_INIT(wb_signalling_debug, "broadcastsignalling", 0,
                            "webrtcbroadcast WHEP/WHIP signalling");
    GST_DEBUG_CATEGORY_INIT(wb_peer_debug, "broadcastpeer", 0, "webrtcbroadcast WebRTC transports");
    GST_DEBUG_CATEGORY_INIT(wb_relay_debug, "broadcastrelay", 0,
                            "webrtcbroadcast relay source (upstream pull and WHIP ingest)");
    GST_DEBUG_CATEGORY_INIT(wb_push_debug, "broadcastpush", 0, "webrtcbroadcast WHIP push");
    g_once_init_leave(&done, 1);
  }
}

}  // namespace wb
