// The pages a node serves itself, compiled into the binary as GResources:
// no file to install, nothing fetched from elsewhere.
#pragma once

#include <string>

namespace wb {
// GET /: plays the broadcast over WHEP.
const std::string &viewer_page_html();
// GET /dashboard: draws the node's GET /stats, polled once a second.
const std::string &dashboard_html();
}  // namespace wb
