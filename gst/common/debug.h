// Debug categories shared by the plugin's machinery. All start with
// "broadcast" so GST_DEBUG=broadcast*:5 shows everything of ours.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS
GST_DEBUG_CATEGORY_EXTERN(wb_viewer_debug);
GST_DEBUG_CATEGORY_EXTERN(wb_signalling_debug);
GST_DEBUG_CATEGORY_EXTERN(wb_peer_debug);
GST_DEBUG_CATEGORY_EXTERN(wb_relay_debug);
GST_DEBUG_CATEGORY_EXTERN(wb_push_debug);
G_END_DECLS

namespace wb {
void debug_init();
}
