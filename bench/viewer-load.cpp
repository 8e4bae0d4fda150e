// Holds N WHEP viewers (real webrtcbin, no decoding) on one broadcast for a
// while and prints what they received. Used by bench/viewer-cpu.sh, which
// runs the broadcast in another process and measures its CPU.
#include <gst/gst.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "support/testsupport.h"

using namespace wbtest;

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc < 4) {
    fprintf(stderr, "usage: %s WHEP-URL VIEWERS HOLD-SECONDS\n", argv[0]);
    return 2;
  }
  std::string url = argv[1];
  int n = atoi(argv[2]);
  int hold = atoi(argv[3]);
  std::vector<std::unique_ptr<WhepViewer>> viewers;
  WhepViewer::Options options;
  options.decode = false;
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    viewers.push_back(std::make_unique<WhepViewer>(options));
    if (viewers.back()->connect(url) != 201) ++failed;
  }
  wait_until([&] {
    return std::all_of(viewers.begin(), viewers.end(), [](auto &v) { return v->video_frames() > 0; });
  }, 20000ms);
  std::vector<double> first;
  for (auto &v : viewers)
    if (v->first_video_frame_ms() >= 0) first.push_back(v->first_video_frame_ms());
  std::sort(first.begin(), first.end());
  printf("viewers=%d failed=%d first_packet_ms_p50=%.0f first_packet_ms_max=%.0f\n", n, failed,
         first.empty() ? -1.0 : first[first.size() / 2], first.empty() ? -1.0 : first.back());
  fflush(stdout);
  std::vector<unsigned> start;
  for (auto &v : viewers) start.push_back(v->video_packets());
  std::this_thread::sleep_for(std::chrono::seconds(hold));
  unsigned min_pkts = ~0u, gaps = 0;
  for (size_t i = 0; i < viewers.size(); ++i) {
    min_pkts = std::min(min_pkts, viewers[i]->video_packets() - start[i]);
    gaps += viewers[i]->video_gaps();
  }
  printf("held=%ds min_video_packets_per_viewer=%u total_seq_gaps=%u\n", hold, n ? min_pkts : 0, gaps);
  fflush(stdout);
  viewers.clear();
  return 0;
}
