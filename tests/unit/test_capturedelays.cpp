#include <gtest/gtest.h>

#include "fanout/capturedelays.h"

using wb::CaptureDelays;
using Medium = CaptureDelays::Medium;

namespace {

constexpr int64_t kMs = 1000;

// Notes one medium every `every` ms for `for_ms`, each batch `delay` ms
// after its capture, from `start` ms on. Returns the end, in ms.
int64_t feed(CaptureDelays &delays, Medium medium, int64_t start, int64_t for_ms, int64_t every, int64_t delay) {
  int64_t t = start;
  for (; t < start + for_ms; t += every) delays.note(medium, (t - delay) * kMs, t * kMs);
  return t;
}

}  // namespace

TEST(CaptureDelays, NothingIsShiftedUntilBothMediaWereSeen) {
  CaptureDelays delays;
  EXPECT_EQ(delays.audio_lag_us(), 0);
  feed(delays, Medium::Audio, 0, 500, 20, 17);
  EXPECT_EQ(delays.delay_us(Medium::Audio), 17 * kMs);
  EXPECT_EQ(delays.delay_us(Medium::Video), -1);
  EXPECT_EQ(delays.audio_lag_us(), 0) << "audio alone has nothing to be in sync with";
}

TEST(CaptureDelays, AudioLaterThanVideoIsShiftedByTheDifference) {
  CaptureDelays delays;
  // Video: most frames 3 ms after capture, a keyframe each second 12 ms.
  for (int64_t t = 0; t < 3000; t += 33) {
    delays.note(Medium::Video, (t - (t % 990 == 0 ? 12 : 3)) * kMs, t * kMs);
    delays.note(Medium::Audio, (t - 17) * kMs, t * kMs);
  }
  EXPECT_EQ(delays.delay_us(Medium::Video), 3 * kMs) << "the fastest frames, not the keyframes";
  EXPECT_EQ(delays.audio_lag_us(), 14 * kMs);
}

TEST(CaptureDelays, AudioEarlierThanVideoIsNotShifted) {
  // A hardware video encoder slower than the audio path: the browser holds
  // the sound for the picture, as with capture-time reports.
  CaptureDelays delays;
  feed(delays, Medium::Video, 0, 2000, 33, 60);
  feed(delays, Medium::Audio, 0, 2000, 20, 17);
  EXPECT_EQ(delays.audio_lag_us(), 0);
}

TEST(CaptureDelays, TheShiftIsCappedWhereSoundBehindItsPictureIsNoticed) {
  CaptureDelays delays;
  feed(delays, Medium::Video, 0, 2000, 33, 5);
  feed(delays, Medium::Audio, 0, 2000, 20, 120);
  EXPECT_EQ(delays.audio_lag_us(), CaptureDelays::kMaxAudioLagUs);
}

TEST(CaptureDelays, ADelayFollowsTheMediumWithinTwoWindows) {
  CaptureDelays delays;
  int64_t t = feed(delays, Medium::Video, 0, 3000, 33, 3);
  feed(delays, Medium::Audio, 0, 3000, 20, 17);
  ASSERT_EQ(delays.audio_lag_us(), 14 * kMs);
  // The video encoder slows down (a bigger picture): its old, smaller
  // delay is forgotten after at most two windows.
  const int64_t slowed = t;
  t = feed(delays, Medium::Video, t, 2 * CaptureDelays::kWindowUs / kMs + 100, 33, 10);
  feed(delays, Medium::Audio, slowed, t - slowed, 20, 17);
  EXPECT_EQ(delays.delay_us(Medium::Video), 10 * kMs);
  EXPECT_EQ(delays.audio_lag_us(), 7 * kMs);
}

TEST(CaptureDelays, AStreamThatPausedStartsAfresh) {
  CaptureDelays delays;
  feed(delays, Medium::Video, 0, 1500, 33, 3);
  // Back after 5 s, slower: nothing of before is kept.
  feed(delays, Medium::Video, 6500, 100, 33, 9);
  EXPECT_EQ(delays.delay_us(Medium::Video), 9 * kMs);
}
