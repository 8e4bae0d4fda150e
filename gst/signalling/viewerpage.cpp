#include "viewerpage.h"

#include <gio/gio.h>

namespace wb {

const std::string &viewer_page_html() {
  static const std::string page = [] {
    GBytes *bytes = g_resources_lookup_data("/org/webrtcbroadcast/viewerpage.html",
                                            G_RESOURCE_LOOKUP_FLAGS_NONE, nullptr);
    if (!bytes) return std::string("<!doctype html><title>viewer page missing</title>");
    gsize size = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(bytes, &size));
    std::string text(data, size);
    g_bytes_unref(bytes);
    return text;
  }();
  return page;
}

}  // namespace wb
