// Keyframe request coalescing and keyframe detection in RTP payloads.
#include <gtest/gtest.h>

#include "keyframes/keyframerequests.h"
#include "rtp/rtpcodec.h"

using namespace wb;
using namespace std::chrono_literals;

TEST(KeyframeRequests, StormOfRequestsBecomesOnePerInterval) {
  KeyframeRequests kf(1000ms);
  auto t0 = KeyframeRequests::Clock::time_point{} + 100s;
  int sent = 0;
  for (int i = 0; i < 100; ++i) sent += kf.request(t0 + std::chrono::milliseconds(i * 5));
  EXPECT_EQ(sent, 1);
  // The remembered requests fire once, after the interval.
  EXPECT_FALSE(kf.due(t0 + 900ms, false));
  EXPECT_TRUE(kf.due(t0 + 1000ms, false));
  EXPECT_FALSE(kf.due(t0 + 1001ms, false));
  EXPECT_EQ(kf.requests_received(), 100u);
  EXPECT_EQ(kf.requests_sent_upstream(), 2u);
}

TEST(KeyframeRequests, KeyframeSatisfiesRememberedRequests) {
  KeyframeRequests kf(1000ms);
  auto t0 = KeyframeRequests::Clock::time_point{} + 100s;
  EXPECT_TRUE(kf.request(t0));
  EXPECT_FALSE(kf.request(t0 + 10ms));
  kf.keyframe_sent();
  EXPECT_FALSE(kf.due(t0 + 2000ms, false));
}

TEST(KeyframeRequests, WaitingViewersAskAgainEachInterval) {
  KeyframeRequests kf(500ms);
  auto t0 = KeyframeRequests::Clock::time_point{} + 100s;
  EXPECT_TRUE(kf.request(t0));
  EXPECT_FALSE(kf.due(t0 + 100ms, true));
  EXPECT_TRUE(kf.due(t0 + 500ms, true));
  EXPECT_FALSE(kf.due(t0 + 600ms, true));
  EXPECT_TRUE(kf.due(t0 + 1000ms, true));
}

// The case of a viewer whose network cannot carry the stream: it loses
// every keyframe and asks again every 100 ms. Over 60 s it may cost the
// others a handful of keyframes, not one per coalescing interval.
TEST(KeyframeRequests, AViewerThatKeepsAskingBacksOffAndOthersAreNotHeldBack) {
  KeyframeRequests kf(250ms);
  auto t0 = KeyframeRequests::Clock::time_point{} + 100s;
  const KeyframeRequests::Requester hopeless = 7, other = 8;
  int passed = 0;
  for (int i = 0; i < 600; ++i) {
    const auto now = t0 + std::chrono::milliseconds(i * 100);
    passed += kf.request(now, hopeless) || kf.due(now, false);
  }
  // Passed on at 0, 1, 3, 7, 15 and 31 s (back-off 1, 2, 4, 8, 16, then
  // 32 s): 6 in 60 s, where the 250-ms coalescing alone would pass 240.
  EXPECT_EQ(passed, 6);
  EXPECT_EQ(kf.requests_refused(), 600u - 6u);
  // Another viewer's first request is not held back by the first's back-off.
  EXPECT_TRUE(kf.request(t0 + 60s, other));
  // A join (the node's own request) is never refused.
  EXPECT_FALSE(kf.request(t0 + 60s + 10ms, 0));  // coalesced, not refused
  EXPECT_EQ(kf.requests_refused(), 594u);
}

TEST(KeyframeRequests, AQuietViewerStartsAfreshOneThatLeftIsForgottenARelayIsExempt) {
  KeyframeRequests kf(0ms);
  auto t0 = KeyframeRequests::Clock::time_point{} + 100s;
  EXPECT_TRUE(kf.request(t0, 5));
  EXPECT_FALSE(kf.request(t0 + 500ms, 5));  // within 1 s
  EXPECT_TRUE(kf.request(t0 + 1000ms, 5));  // then 2 s
  EXPECT_FALSE(kf.request(t0 + 2500ms, 5));
  // 30 s without a request: back to a 1-s back-off, not 4 s.
  EXPECT_TRUE(kf.request(t0 + 33s, 5));
  EXPECT_TRUE(kf.request(t0 + 34s, 5));
  EXPECT_FALSE(kf.request(t0 + 35s, 5));
  kf.forget(5);
  EXPECT_TRUE(kf.request(t0 + 35s + 1ms, 5));
  // A relay child asks for its viewers' joins: never backed off.
  kf.exempt(9);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(kf.request(t0 + 40s + std::chrono::milliseconds(i * 100), 9)) << i;
  EXPECT_EQ(kf.requests_refused(), 3u);  // at 0.5, 2.5 and 35 s, none of the relay's
}

TEST(RtpKeyframes, H264) {
  const uint8_t sps[] = {0x67, 0x42, 0xc0, 0x1e};
  const uint8_t idr[] = {0x65, 0x88};
  const uint8_t slice[] = {0x41, 0x9a};
  const uint8_t stap_a_sps[] = {0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce};
  const uint8_t fu_a_idr_start[] = {0x7c, 0x85, 0x00};
  const uint8_t fu_a_idr_middle[] = {0x7c, 0x05, 0x00};
  const uint8_t fu_a_slice_start[] = {0x5c, 0x81, 0x00};
  EXPECT_TRUE(rtp_payload_starts_keyframe(Codec::H264, sps, sizeof sps));
  EXPECT_TRUE(rtp_payload_starts_keyframe(Codec::H264, idr, sizeof idr));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::H264, slice, sizeof slice));
  EXPECT_TRUE(rtp_payload_starts_keyframe(Codec::H264, stap_a_sps, sizeof stap_a_sps));
  EXPECT_TRUE(rtp_payload_starts_keyframe(Codec::H264, fu_a_idr_start, sizeof fu_a_idr_start));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::H264, fu_a_idr_middle, sizeof fu_a_idr_middle));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::H264, fu_a_slice_start, sizeof fu_a_slice_start));
  const uint8_t truncated_stap[] = {0x78, 0x00, 0x09, 0x67};
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::H264, truncated_stap, sizeof truncated_stap));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::H264, nullptr, 0));
}

TEST(RtpKeyframes, Vp8AndVp9) {
  // VP8: S=1 PID=0, extended with 15-bit picture id, then a key frame header (P=0).
  const uint8_t vp8_key[] = {0x90, 0x80, 0x80, 0x01, 0x10, 0x02, 0x00};
  const uint8_t vp8_delta[] = {0x90, 0x80, 0x80, 0x01, 0x11, 0x02, 0x00};
  const uint8_t vp8_continuation[] = {0x80, 0x80, 0x80, 0x01, 0x10};
  EXPECT_TRUE(rtp_payload_starts_keyframe(Codec::VP8, vp8_key, sizeof vp8_key));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::VP8, vp8_delta, sizeof vp8_delta));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::VP8, vp8_continuation, sizeof vp8_continuation));
  const uint8_t vp9_key[] = {0x88, 0x00};
  const uint8_t vp9_inter[] = {0xc8, 0x00};
  const uint8_t vp9_middle[] = {0x80, 0x00};
  EXPECT_TRUE(rtp_payload_starts_keyframe(Codec::VP9, vp9_key, sizeof vp9_key));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::VP9, vp9_inter, sizeof vp9_inter));
  EXPECT_FALSE(rtp_payload_starts_keyframe(Codec::VP9, vp9_middle, sizeof vp9_middle));
}
