#include "debug.h"

GST_DEBUG_CATEGORY(wb_viewer_debug);
GST_DEBUG_CATEGORY(wb_signalling_debug);

namespace wb {

void debug_init() {
  static gsize done = 0;
  if (g_once_init_enter(&done)) {
    GST_DEBUG_CATEGORY_INIT(wb_viewer_debug, "broadcastviewer", 0, "webrtcbroadcast viewer sessions");
    GST_DEBUG_CATEGORY_INIT(wb_signalling_debug, "broadcastsignalling", 0,
                            "webrtcbroadcast WHEP signalling");
    g_once_init_leave(&done, 1);
  }
}

}  // namespace wb
