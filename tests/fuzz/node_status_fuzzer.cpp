// A node's /status JSON (gst/tree/children.*): a relay reads its
// upstream's (to tell a silent upstream from a restarted one) and a full
// node reads each relay child's (to pick where to send viewers), both from
// whatever answers at that URL. Anything accepted must survive being
// written again by node_status_json() and read back.
#include "fuzz.h"
#include "gstfuzz.h"
#include "tree/children.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::init_gstreamer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string json(reinterpret_cast<const char *>(data), size);
  wb::NodeStatus status;
  if (!wb::parse_node_status(json, &status)) return 0;
  wb::NodeStatus again;
  FUZZ_CHECK(wb::parse_node_status(wb::node_status_json(status), &again));
  FUZZ_CHECK(again.path == status.path && again.instance == status.instance && again.viewers == status.viewers &&
             again.max_viewers == status.max_viewers && again.children == status.children);
  return 0;
}
