// The viewer page served at GET /, compiled into the binary as a GResource.
#pragma once

#include <string>

namespace wb {
const std::string &viewer_page_html();
}
