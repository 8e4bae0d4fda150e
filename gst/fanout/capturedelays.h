#pragma once

#include <atomic>
#include <cstdint>

namespace wb {

// How long after capture each medium of one broadcast reaches its fan-out,
// and how much later than its capture audio's sender reports may say it was
// taken so that a browser does not hold the picture back for its sound.
//
// Why: a browser plays audio and video of one capture instant together, by
// the NTP time the sender reports give each. A 20 ms Opus frame leaves the
// encoder once its last sample is in, a fast video encoder's frame at once,
// so audio arrives ~15 ms later after capture and the browser holds every
// picture that long (measured: docs/SCALING.md). Reporting audio as taken
// that much later (never more than kMaxAudioLagUs) removes the hold; sound
// then plays that much behind its picture, inside broadcast tolerances.
// Audio that arrives earlier than video (a slow hardware video encoder) is
// reported as captured: the browser holds the sound, never the picture.
//
// One per broadcast, shared by its fan-outs; each medium is noted by its
// own streaming thread, and read by any.
class CaptureDelays {
 public:
  enum class Medium { Video, Audio };

  // ATSC IS-191's limit for sound behind its picture; EBU R37 allows 60 ms.
  static constexpr int64_t kMaxAudioLagUs = 45000;
  // Each medium's delay is its smallest in the last one to two windows: the
  // delay of its fastest frames, steady against a keyframe's longer encode.
  static constexpr int64_t kWindowUs = 1000000;

  // A batch of `medium` captured at `captured_us` reached its fan-out at
  // `now_us` (one monotonic clock).
  void note(Medium medium, int64_t captured_us, int64_t now_us);
  // How much later than its capture audio is reported: audio's delay beyond
  // video's, at most kMaxAudioLagUs; 0 until both media were seen.
  int64_t audio_lag_us() const;
  // A medium's smallest delay after capture lately, or -1 if not seen.
  int64_t delay_us(Medium medium) const;

 private:
  struct Track {
    // The streaming thread's own.
    int64_t window_start_us = 0;
    int64_t window_min_us = -1;
    int64_t previous_min_us = -1;
    // Published: min of the two windows.
    std::atomic<int64_t> delay_us{-1};
  };
  Track tracks_[2];
};

}  // namespace wb
