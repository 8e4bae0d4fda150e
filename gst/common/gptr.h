// Small RAII holders for GLib/GStreamer references, so ownership is visible
// in types instead of in matching unref calls.
#pragma once

#include <glib-object.h>
#include <gst/gst.h>

#include <memory>
#include <mutex>

namespace wb {

struct GObjectUnref {
  void operator()(gpointer p) const {
    if (p) g_object_unref(p);
  }
};
struct GstObjectUnref {
  void operator()(gpointer p) const {
    if (p) gst_object_unref(p);
  }
};
struct GFreeDeleter {
  void operator()(gpointer p) const { g_free(p); }
};
struct GstCapsUnref {
  void operator()(GstCaps *c) const {
    if (c) gst_caps_unref(c);
  }
};
struct GstStructureFree {
  void operator()(GstStructure *s) const {
    if (s) gst_structure_free(s);
  }
};

template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;
template <typename T>
using GstObjectPtr = std::unique_ptr<T, GstObjectUnref>;
using GCharPtr = std::unique_ptr<gchar, GFreeDeleter>;
using CapsPtr = std::unique_ptr<GstCaps, GstCapsUnref>;
using StructurePtr = std::unique_ptr<GstStructure, GstStructureFree>;

// Takes an additional reference (for borrowed pointers).
template <typename T>
GstObjectPtr<T> ref_gst(T *obj) {
  return GstObjectPtr<T>(obj ? static_cast<T *>(gst_object_ref(obj)) : nullptr);
}

}  // namespace wb
