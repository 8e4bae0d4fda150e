// Set-up shared by the harnesses that call GStreamer, GLib or json-glib:
// a GLib critical or warning means our code handed those libraries
// something they refuse, which the element would log and carry on from, so
// it counts as a crash here.
#pragma once

#include <gst/gst.h>

namespace fuzz {

inline void init_gstreamer() {
  gst_init(nullptr, nullptr);
  g_log_set_always_fatal(GLogLevelFlags(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING));
}

}  // namespace fuzz
