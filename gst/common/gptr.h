// RAII holders for GStreamer references, so ownership is visible in types
// instead of in matching unref calls.
#pragma once

#include <gst/gst.h>

#include <memory>

namespace wb {

struct GstCapsUnref {
  void operator()(GstCaps *caps) const {
    if (caps) gst_caps_unref(caps);
  }
};

using CapsPtr = std::unique_ptr<GstCaps, GstCapsUnref>;

}  // namespace wb
