#include "fanout/capturedelays.h"

#include <algorithm>

namespace wb {

namespace {

int64_t smaller_known(int64_t a, int64_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  return std::min(a, b);
}

}  // namespace

void CaptureDelays::note(Medium medium, int64_t captured_us, int64_t now_us) {
  Track &track = tracks_[int(medium)];
  const int64_t delay = std::max<int64_t>(0, now_us - captured_us);
  if (track.window_min_us < 0 || now_us - track.window_start_us >= kWindowUs) {
    // A gap of more than a window forgets the old one too.
    track.previous_min_us = now_us - track.window_start_us < 2 * kWindowUs ? track.window_min_us : -1;
    track.window_start_us = now_us;
    track.window_min_us = delay;
  } else {
    track.window_min_us = std::min(track.window_min_us, delay);
  }
  track.delay_us.store(smaller_known(track.window_min_us, track.previous_min_us), std::memory_order_relaxed);
}

int64_t CaptureDelays::delay_us(Medium medium) const {
  return tracks_[int(medium)].delay_us.load(std::memory_order_relaxed);
}

int64_t CaptureDelays::audio_lag_us() const {
  const int64_t video = delay_us(Medium::Video), audio = delay_us(Medium::Audio);
  if (video < 0 || audio < 0) return 0;
  return std::clamp<int64_t>(audio - video, 0, kMaxAudioLagUs);
}

}  // namespace wb
