// A relay's reading of its upstream's answer (gst/relay/upstreamsession.*):
// which media the upstream will send, from whatever SDP came back from the
// upstream URL. Only video and audio come out, never more than the answer
// has sections, and never a section answered with port 0 or inactive.
#include <algorithm>

#include "fuzz.h"
#include "gstfuzz.h"
#include "relay/upstreamsession.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::init_gstreamer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string answer(reinterpret_cast<const char *>(data), size);
  const std::vector<std::string> media = wb::answered_media(answer);
  size_t sections = 0;
  for (size_t at = answer.find("m="); at != std::string::npos; at = answer.find("m=", at + 2)) ++sections;
  FUZZ_CHECK(media.size() <= sections);
  FUZZ_CHECK(std::all_of(media.begin(), media.end(), [](const std::string &k) { return k == "video" || k == "audio"; }));
  return 0;
}
