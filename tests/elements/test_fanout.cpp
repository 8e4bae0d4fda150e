// The fan-out element with GstHarness on its input and plain pads as viewers.
#include <gst/check/gstharness.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video-event.h>
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <vector>

#include "fanout/fanout.h"

namespace {

struct Receiver {
  GstPad *pad = nullptr;
  std::mutex mutex;
  std::vector<GstBuffer *> buffers;
  GstFlowReturn result = GST_FLOW_OK;

  Receiver() {
    pad = gst_pad_new("sink", GST_PAD_SINK);
    gst_pad_set_element_private(pad, this);
    gst_pad_set_chain_function(pad, +[](GstPad *p, GstObject *, GstBuffer *buf) {
      auto *self = static_cast<Receiver *>(gst_pad_get_element_private(p));
      std::lock_guard<std::mutex> lock(self->mutex);
      self->buffers.push_back(buf);
      return self->result;
    });
    gst_pad_set_active(pad, TRUE);
  }
  ~Receiver() {
    for (GstBuffer *b : buffers) gst_buffer_unref(b);
    gst_pad_set_active(pad, FALSE);
    gst_object_unref(pad);
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex);
    return buffers.size();
  }
};

GstBuffer *rtp_packet(guint16 seq, std::vector<guint8> payload) {
  GstBuffer *buf = gst_rtp_buffer_new_allocate(payload.size(), 0, 0);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(buf, GST_MAP_WRITE, &rtp);
  gst_rtp_buffer_set_payload_type(&rtp, 96);
  gst_rtp_buffer_set_ssrc(&rtp, 0x11111111);
  gst_rtp_buffer_set_seq(&rtp, seq);
  gst_rtp_buffer_set_timestamp(&rtp, 9000u * seq);
  gst_rtp_buffer_set_marker(&rtp, TRUE);
  memcpy(gst_rtp_buffer_get_payload(&rtp), payload.data(), payload.size());
  gst_rtp_buffer_unmap(&rtp);
  return buf;
}

const std::vector<guint8> kDelta = {0x41, 0x9a, 0x01, 0x02};
const std::vector<guint8> kSps = {0x67, 0x42, 0xc0, 0x1e};
const std::vector<guint8> kIdr = {0x65, 0x88, 0x01, 0x02};

struct Header {
  guint8 pt;
  guint32 ssrc;
  guint16 seq;
};

Header header_of(GstBuffer *buf) {
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  EXPECT_TRUE(gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp));
  Header h{gst_rtp_buffer_get_payload_type(&rtp), gst_rtp_buffer_get_ssrc(&rtp), gst_rtp_buffer_get_seq(&rtp)};
  gst_rtp_buffer_unmap(&rtp);
  return h;
}

class FanoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fanout = WB_FANOUT(gst_object_ref_sink(g_object_new(WB_TYPE_FANOUT, nullptr)));
    harness = gst_harness_new_with_element(GST_ELEMENT(fanout), "sink", nullptr);
    gst_harness_set_src_caps_str(harness,
                                 "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96");
  }
  void TearDown() override {
    gst_harness_teardown(harness);
    gst_object_unref(fanout);
  }

  GstPad *add(Receiver &r, guint8 pt, guint32 ssrc) {
    GstCaps *caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "video", "payload",
                                        G_TYPE_INT, int(pt), "ssrc", G_TYPE_UINT, ssrc, nullptr);
    GstPad *pad = wb::fanout_add_branch(fanout, r.pad, caps, pt, ssrc);
    gst_caps_unref(caps);
    return pad;
  }
  void push(guint16 seq, const std::vector<guint8> &payload) {
    EXPECT_EQ(gst_harness_push(harness, rtp_packet(seq, payload)), GST_FLOW_OK);
  }
  guint upstream_keyframe_requests() {
    guint n = 0;
    GstEvent *ev;
    while ((ev = gst_harness_try_pull_upstream_event(harness))) {
      if (gst_video_event_is_force_key_unit(ev)) {
        gboolean all_headers = FALSE;
        gst_video_event_parse_upstream_force_key_unit(ev, nullptr, &all_headers, nullptr);
        EXPECT_TRUE(all_headers);
        ++n;
      }
      gst_event_unref(ev);
    }
    return n;
  }

  WbFanout *fanout = nullptr;
  GstHarness *harness = nullptr;
};

}  // namespace

TEST_F(FanoutTest, BranchGetsNothingUntilStartedThenStartsAtAKeyframe) {
  Receiver r;
  GstPad *branch = add(r, 102, 0xabcdef01);
  ASSERT_TRUE(branch);
  push(1, kSps);
  EXPECT_EQ(r.count(), 0u) << "a branch not yet started must get nothing";
  wb::fanout_start_branch(fanout, branch);
  push(2, kDelta);
  push(3, kDelta);
  EXPECT_EQ(r.count(), 0u) << "delta frames before the first keyframe are dropped";
  EXPECT_FALSE(wb::fanout_branch_has_keyframe(fanout, branch));
  push(4, kSps);
  push(5, kIdr);
  push(6, kDelta);
  ASSERT_EQ(r.count(), 3u);
  EXPECT_TRUE(wb::fanout_branch_has_keyframe(fanout, branch));
  EXPECT_EQ(header_of(r.buffers[0]).seq, 4);
  EXPECT_EQ(header_of(r.buffers[2]).seq, 6);
}

TEST_F(FanoutTest, EachBranchGetsItsOwnPayloadTypeAndSsrcOverSharedPayload) {
  Receiver a, b;
  GstPad *pa = add(a, 102, 0xaaaaaaaa);
  GstPad *pb = add(b, 127, 0xbbbbbbbb);
  wb::fanout_start_branch(fanout, pa);
  wb::fanout_start_branch(fanout, pb);
  GstBuffer *in = rtp_packet(10, kSps);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(in, GST_MAP_READ, &rtp);
  const guint8 *shared_payload = static_cast<const guint8 *>(gst_rtp_buffer_get_payload(&rtp));
  gst_rtp_buffer_unmap(&rtp);
  gst_buffer_ref(in);
  ASSERT_EQ(gst_harness_push(harness, in), GST_FLOW_OK);
  ASSERT_EQ(a.count(), 1u);
  ASSERT_EQ(b.count(), 1u);
  Header ha = header_of(a.buffers[0]), hb = header_of(b.buffers[0]);
  EXPECT_EQ(ha.pt, 102);
  EXPECT_EQ(ha.ssrc, 0xaaaaaaaau);
  EXPECT_EQ(hb.pt, 127);
  EXPECT_EQ(hb.ssrc, 0xbbbbbbbbu);
  EXPECT_EQ(ha.seq, 10);
  // The input is untouched and the payload bytes were not copied per viewer.
  EXPECT_EQ(header_of(in).pt, 96);
  EXPECT_EQ(header_of(in).ssrc, 0x11111111u);
  for (GstBuffer *out : {a.buffers[0], b.buffers[0]}) {
    GstRTPBuffer o = GST_RTP_BUFFER_INIT;
    gst_rtp_buffer_map(out, GST_MAP_READ, &o);
    EXPECT_EQ(static_cast<const guint8 *>(gst_rtp_buffer_get_payload(&o)), shared_payload);
    EXPECT_TRUE(gst_rtp_buffer_get_marker(&o));
    gst_rtp_buffer_unmap(&o);
  }
  gst_buffer_unref(in);
}

TEST_F(FanoutTest, KeyframeRequestsAreCoalesced) {
  wb::fanout_set_keyframe_min_interval(fanout, 60000);
  push(1, kDelta);  // the stream is known to be video
  std::vector<std::unique_ptr<Receiver>> receivers;
  std::vector<GstPad *> pads;
  for (int i = 0; i < 10; ++i) {
    receivers.push_back(std::make_unique<Receiver>());
    pads.push_back(add(*receivers.back(), 102, 1000 + i));
    wb::fanout_start_branch(fanout, pads.back());  // each join wants a keyframe
  }
  for (GstPad *p : pads)  // and each viewer sends PLI
    gst_pad_send_event(p, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, 0));
  push(2, kDelta);
  EXPECT_EQ(upstream_keyframe_requests(), 1u);
  wb::FanoutStats stats = wb::fanout_get_stats(fanout);
  EXPECT_EQ(stats.keyframe_requests_received, 20u);
  EXPECT_EQ(stats.keyframe_requests_sent, 1u);

  wb::fanout_set_keyframe_min_interval(fanout, 0);
  gst_pad_send_event(pads[0], gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, 0));
  EXPECT_EQ(upstream_keyframe_requests(), 1u);
}

TEST_F(FanoutTest, AFailingBranchDoesNotStopTheOthers) {
  Receiver good, bad;
  GstPad *pg = add(good, 102, 1);
  GstPad *pb = add(bad, 102, 2);
  bad.result = GST_FLOW_ERROR;
  wb::fanout_start_branch(fanout, pg);
  wb::fanout_start_branch(fanout, pb);
  push(1, kSps);
  push(2, kDelta);
  EXPECT_EQ(good.count(), 2u);
  EXPECT_EQ(bad.count(), 2u);
}

TEST_F(FanoutTest, RemovedBranchGetsNothingMoreAndOthersContinue) {
  Receiver a, b;
  GstPad *pa = add(a, 102, 1);
  GstPad *pb = add(b, 102, 2);
  wb::fanout_start_branch(fanout, pa);
  wb::fanout_start_branch(fanout, pb);
  push(1, kSps);
  wb::fanout_remove_branch(fanout, pa);
  push(2, kDelta);
  push(3, kDelta);
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(b.count(), 3u);
  EXPECT_EQ(wb::fanout_get_stats(fanout).branches, 1u);
  EXPECT_FALSE(gst_pad_is_linked(a.pad));
}

TEST_F(FanoutTest, BuffersListsAreDeliveredAsLists) {
  Receiver r;
  GstPad *p = add(r, 102, 7);
  wb::fanout_start_branch(fanout, p);
  GstBufferList *list = gst_buffer_list_new();
  gst_buffer_list_add(list, rtp_packet(1, kDelta));
  gst_buffer_list_add(list, rtp_packet(2, kSps));
  gst_buffer_list_add(list, rtp_packet(3, kIdr));
  EXPECT_EQ(gst_pad_push_list(harness->srcpad, list), GST_FLOW_OK);
  // Gate opens inside the list, at the SPS.
  ASSERT_EQ(r.count(), 2u);
  EXPECT_EQ(header_of(r.buffers[0]).seq, 2);
}
