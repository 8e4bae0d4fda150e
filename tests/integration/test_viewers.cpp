// Real webrtcbin viewers over real WHEP on loopback: media arrives and decodes.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "support/testsupport.h"

using namespace wbtest;

TEST(Viewers, OneViewerDecodesVideoAndAudio) {
  Broadcast broadcast(Broadcast::Options{});
  ASSERT_TRUE(broadcast.start()) << broadcast.last_error();
  WhepViewer viewer;
  ASSERT_TRUE(wait_until([&] { return http_request("POST", broadcast.url(), "application/sdp", make_offer({})).status != 409; }, 5000ms));
  ASSERT_EQ(viewer.connect(broadcast.url()), 201) << viewer.error();
  EXPECT_TRUE(wait_until([&] { return viewer.video_frames() > 10 && viewer.audio_frames() > 10; }, 10000ms))
      << "video " << viewer.video_frames() << " audio " << viewer.audio_frames() << "\n" << viewer.answer();
  EXPECT_EQ(viewer.video_width(), 320u);
}
