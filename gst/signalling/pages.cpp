#include "pages.h"

#include <gio/gio.h>

namespace wb {

namespace {

std::string resource_text(const char *name) {
  const std::string path = std::string("/org/webrtcbroadcast/") + name;
  GBytes *bytes = g_resources_lookup_data(path.c_str(), G_RESOURCE_LOOKUP_FLAGS_NONE, nullptr);
  if (!bytes) return std::string("<!doctype html><title>") + name + " missing</title>";
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(bytes, &size));
  std::string text(data, size);
  g_bytes_unref(bytes);
  return text;
}

}  // namespace

const std::string &viewer_page_html() {
  static const std::string page = resource_text("viewerpage.html");
  return page;
}

const std::string &dashboard_html() {
  static const std::string page = resource_text("dashboard.html");
  return page;
}

}  // namespace wb
