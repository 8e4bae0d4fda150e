// The fan-out element with GstHarness on its input; viewers are plain pads
// (the webrtcbin kind) or UDP sockets on loopback fed by sender shards.
#include <gst/check/gstharness.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video-event.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fanout/fanout.h"
#include "fanout/senderpool.h"

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

  wb::SubscriberId add(Receiver &r, guint8 pt, guint32 ssrc) {
    GstCaps *caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "video", "payload",
                                        G_TYPE_INT, int(pt), "ssrc", G_TYPE_UINT, ssrc, nullptr);
    wb::SubscriberId id = wb::fanout_subscribe_pad(fanout, wb::Rewrite{pt, ssrc}, r.pad, caps);
    gst_caps_unref(caps);
    return id;
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
  wb::SubscriberId id = add(r, 102, 0xabcdef01);
  ASSERT_TRUE(id);
  push(1, kSps);
  EXPECT_EQ(r.count(), 0u) << "a subscriber not yet started must get nothing";
  wb::fanout_start(fanout, id);
  push(2, kDelta);
  push(3, kDelta);
  EXPECT_EQ(r.count(), 0u) << "delta frames before the first keyframe are dropped";
  EXPECT_FALSE(wb::fanout_has_keyframe(fanout, id));
  push(4, kSps);
  push(5, kIdr);
  push(6, kDelta);
  ASSERT_EQ(r.count(), 3u);
  EXPECT_TRUE(wb::fanout_has_keyframe(fanout, id));
  EXPECT_EQ(header_of(r.buffers[0]).seq, 4);
  EXPECT_EQ(header_of(r.buffers[2]).seq, 6);
}

TEST_F(FanoutTest, EachBranchGetsItsOwnPayloadTypeAndSsrcOverSharedPayload) {
  Receiver a, b;
  wb::fanout_start(fanout, add(a, 102, 0xaaaaaaaa));
  wb::fanout_start(fanout, add(b, 127, 0xbbbbbbbb));
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
    wb::fanout_start(fanout, add(*receivers.back(), 102, 1000 + i));  // each join wants a keyframe
    pads.push_back(gst_pad_get_peer(receivers.back()->pad));
  }
  for (GstPad *p : pads)  // and each viewer sends PLI
    gst_pad_send_event(p, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, 0));
  push(2, kDelta);
  EXPECT_EQ(upstream_keyframe_requests(), 1u);
  wb::FanoutStats stats = wb::fanout_get_stats(fanout);
  EXPECT_EQ(stats.keyframe_requests_received, 20u);
  EXPECT_EQ(stats.keyframe_requests_sent, 1u);

  EXPECT_EQ(stats.keyframe_requests_refused, 0u);

  wb::fanout_set_keyframe_min_interval(fanout, 0);
  // The first viewer asks again at once: within its own back-off (1 s after
  // its last request was taken), refused, even with no coalescing left.
  gst_pad_send_event(pads[0], gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, 0));
  EXPECT_EQ(upstream_keyframe_requests(), 0u);
  EXPECT_EQ(wb::fanout_get_stats(fanout).keyframe_requests_refused, 1u);
  // A join is never refused: it goes upstream at once.
  receivers.push_back(std::make_unique<Receiver>());
  wb::fanout_start(fanout, add(*receivers.back(), 102, 2000));
  EXPECT_EQ(upstream_keyframe_requests(), 1u);
  for (GstPad *p : pads) gst_object_unref(p);
}

TEST_F(FanoutTest, AFailingPadDoesNotStopTheOthers) {
  Receiver good, bad;
  bad.result = GST_FLOW_ERROR;
  wb::fanout_start(fanout, add(good, 102, 1));
  wb::fanout_start(fanout, add(bad, 102, 2));
  push(1, kSps);
  push(2, kDelta);
  EXPECT_EQ(good.count(), 2u);
  EXPECT_EQ(bad.count(), 2u);
}

TEST_F(FanoutTest, RemovedSubscriberGetsNothingMoreAndOthersContinue) {
  Receiver a, b;
  wb::SubscriberId ia = add(a, 102, 1);
  wb::fanout_start(fanout, ia);
  wb::fanout_start(fanout, add(b, 102, 2));
  push(1, kSps);
  wb::fanout_unsubscribe(fanout, ia);
  push(2, kDelta);
  push(3, kDelta);
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(b.count(), 3u);
  EXPECT_EQ(wb::fanout_get_stats(fanout).subscribers, 1u);
  EXPECT_FALSE(gst_pad_is_linked(a.pad));
}

TEST_F(FanoutTest, BuffersListsAreDeliveredAsLists) {
  Receiver r;
  wb::fanout_start(fanout, add(r, 102, 7));
  GstBufferList *list = gst_buffer_list_new();
  gst_buffer_list_add(list, rtp_packet(1, kDelta));
  gst_buffer_list_add(list, rtp_packet(2, kSps));
  gst_buffer_list_add(list, rtp_packet(3, kIdr));
  EXPECT_EQ(gst_pad_push_list(harness->srcpad, list), GST_FLOW_OK);
  // Gate opens inside the list, at the SPS.
  ASSERT_EQ(r.count(), 2u);
  EXPECT_EQ(header_of(r.buffers[0]).seq, 2);
}

namespace {

// A UDP socket on 127.0.0.1 (any port), optionally in a SO_REUSEPORT group.
int udp_socket(bool reuse_port, sockaddr_in *address) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  address->sin_family = AF_INET;
  address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address->sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr *>(address), sizeof *address);
  socklen_t len = sizeof *address;
  getsockname(fd, reinterpret_cast<sockaddr *>(address), &len);
  return fd;
}

// A viewer at a UDP socket, served by a direct sender from `port_fd`. Its
// SRTP packets' headers are in the clear: payload type, sequence number,
// timestamp and SSRC are read as sent.
struct UdpViewer {
  int fd = -1;
  sockaddr_in address{};
  std::shared_ptr<wb::MediaRoute> route;
  std::vector<Header> got;
  std::vector<uint32_t> timestamps;
  std::vector<size_t> sizes;
  uint16_t source_port = 0;

  explicit UdpViewer(int port_fd) {
    fd = udp_socket(false, &address);
    wb::UdpTarget target;
    target.fd = port_fd;
    memcpy(&target.remote, &address, sizeof address);
    target.remote_len = sizeof address;
    target.description = "test viewer";
    route = std::make_shared<wb::MediaRoute>(target);
  }
  ~UdpViewer() { close(fd); }
  std::unique_ptr<wb::SrtpSender> sender() {
    uint8_t key_salt[30];
    for (size_t i = 0; i < sizeof key_salt; ++i) key_salt[i] = uint8_t(i * 7 + fd);
    std::string why;
    auto s = wb::SrtpSender::create(route, key_salt, wb::SrtpProfile::Aes128CmSha1_80, &why);
    EXPECT_TRUE(s) << why;
    return s;
  }
  // Reads what arrived until `count` packets in all, or `ms` passed.
  size_t wait_for(size_t count, int ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (got.size() < count) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, int(left)) <= 0) break;
      uint8_t buf[2048];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &len);
      if (n < 12) continue;
      got.push_back({guint8(buf[1] & 0x7f), GST_READ_UINT32_BE(buf + 8), GST_READ_UINT16_BE(buf + 2)});
      timestamps.push_back(GST_READ_UINT32_BE(buf + 4));
      sizes.push_back(size_t(n));
      source_port = ntohs(from.sin_port);
    }
    return got.size();
  }
};

class ShardTest : public FanoutTest {
 protected:
  void SetUp() override {
    FanoutTest::SetUp();
    port_fd = udp_socket(true, &port_address);
    pool = std::make_shared<wb::SenderPool>(2);
    std::string why;
    ASSERT_TRUE(pool->send_from_own_sockets(port_fd, &why)) << why;
  }
  void TearDown() override {
    pool.reset();
    FanoutTest::TearDown();
    close(port_fd);
  }
  wb::SubscriberId join(UdpViewer &viewer, const wb::Rewrite &rewrite) {
    wb::SubscriberId id = wb::fanout_subscribe(fanout, rewrite);
    wb::fanout_start(fanout, id, viewer.sender(), pool);
    return id;
  }
  // Returns once every shard has run what was posted to it before.
  void drain() {
    for (unsigned i = 0; i < pool->size(); ++i) {
      std::promise<void> done;
      pool->post(i, [&done] { done.set_value(); });
      ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
    }
  }

  int port_fd = -1;
  sockaddr_in port_address{};
  std::shared_ptr<wb::SenderPool> pool;
};

}  // namespace

TEST_F(ShardTest, ViewersSpreadOverShardsAllReceiveFromTheOnePort) {
  std::vector<std::unique_ptr<UdpViewer>> viewers;
  std::vector<wb::SubscriberId> ids;
  unsigned on_shard[2] = {0, 0};
  for (unsigned i = 0; i < 6; ++i) {
    viewers.push_back(std::make_unique<UdpViewer>(port_fd));
    ids.push_back(join(*viewers.back(), wb::Rewrite{uint8_t(100 + i), 0x1000u + i}));
  }
  for (auto id : ids) {
    int shard = wb::fanout_shard_of(fanout, id);
    ASSERT_TRUE(shard == 0 || shard == 1);
    ++on_shard[shard];
  }
  EXPECT_EQ(on_shard[0], 3u);
  EXPECT_EQ(on_shard[1], 3u);
  push(1, kSps);
  push(2, kIdr);
  push(3, kDelta);
  for (unsigned i = 0; i < viewers.size(); ++i) {
    UdpViewer &v = *viewers[i];
    ASSERT_EQ(v.wait_for(3, 5000), 3u) << "viewer " << i;
    for (unsigned k = 0; k < 3; ++k) {
      EXPECT_EQ(v.got[k].pt, 100 + i);
      EXPECT_EQ(v.got[k].ssrc, 0x1000u + i);
      EXPECT_EQ(v.got[k].seq, 1 + k);
    }
    // From each shard's own socket, on the port's address and number.
    EXPECT_EQ(v.source_port, ntohs(port_address.sin_port));
    EXPECT_TRUE(wb::fanout_has_keyframe(fanout, ids[i]));
  }
  EXPECT_EQ(pool->stats(0).subscriptions + pool->stats(1).subscriptions, 6u);
}

TEST_F(ShardTest, TheKeyframeGateIsEachSubscribersOwnOnEveryShard) {
  UdpViewer early(port_fd), late(port_fd);
  wb::SubscriberId a = join(early, wb::Rewrite{102, 1});
  push(1, kSps);
  wb::SubscriberId b = join(late, wb::Rewrite{102, 2});
  ASSERT_NE(wb::fanout_shard_of(fanout, a), wb::fanout_shard_of(fanout, b));
  push(2, kDelta);
  push(3, kDelta);
  ASSERT_EQ(early.wait_for(3, 5000), 3u);
  drain();
  EXPECT_EQ(late.wait_for(1, 100), 0u) << "no delta frame before the late viewer's first keyframe";
  EXPECT_FALSE(wb::fanout_has_keyframe(fanout, b));
  push(4, kSps);
  push(5, kDelta);
  ASSERT_EQ(late.wait_for(2, 5000), 2u);
  EXPECT_EQ(late.got[0].seq, 4);
  EXPECT_TRUE(wb::fanout_has_keyframe(fanout, b));
}

TEST_F(ShardTest, ANackIsAnsweredInTheViewersOwnNumbering) {
  UdpViewer viewer(port_fd);
  // As after a switch between streams: the viewer's numbering is offset.
  const wb::Rewrite rewrite{102, 77, 1000, 5};
  wb::SubscriberId id = join(viewer, rewrite);
  for (guint16 seq = 1; seq <= 5; ++seq) push(seq, seq == 1 ? kSps : kDelta);
  ASSERT_EQ(viewer.wait_for(5, 5000), 5u);
  EXPECT_EQ(viewer.got[0].seq, 1001);
  EXPECT_EQ(viewer.timestamps[0], 9000u * 1 + 5);
  // The viewer lost its 1003 (the stream's 3).
  wb::fanout_retransmit(fanout, id, {1003});
  push(6, kDelta);
  ASSERT_EQ(viewer.wait_for(7, 5000), 7u);
  EXPECT_EQ(viewer.got[5].seq, 1003) << "the retransmission comes before the new packet";
  EXPECT_EQ(viewer.timestamps[5], 9000u * 3 + 5);
  EXPECT_EQ(viewer.got[6].seq, 1006);
  EXPECT_EQ(wb::fanout_get_stats(fanout).packets_retransmitted, 1u);
  // Numbers it was never sent (before its keyframe, or never) are not answered.
  wb::fanout_retransmit(fanout, id, {3, 999});
  push(7, kDelta);
  ASSERT_EQ(viewer.wait_for(8, 5000), 8u);
  EXPECT_EQ(viewer.got[7].seq, 1007);
  EXPECT_EQ(wb::fanout_get_stats(fanout).packets_retransmitted, 1u);
}

// A viewer's NACK answers in a second are bounded in bytes by half what its
// layer carries (at least 8 KiB): a viewer on a link thinner than its layer
// NACKs most of it, and answering it all would keep that link full.
TEST_F(ShardTest, NackAnswersAreBoundedByHalfTheViewersLayerRate) {
  UdpViewer viewer(port_fd);
  wb::SubscriberId id = join(viewer, wb::Rewrite{102, 77});
  std::vector<guint8> big(kDelta);
  big.resize(1000, 0xab);
  const size_t packet = 12 + big.size();
  guint16 seq = 1;
  push(seq++, kSps);
  for (; seq <= 60; ++seq) push(seq, big);
  ASSERT_EQ(viewer.wait_for(60, 5000), 60u);
  ASSERT_EQ(wb::fanout_get_stats(fanout).layers.at(0).bitrate, 0u) << "not measured yet: the floor applies";
  std::vector<guint16> all;
  for (guint16 k = 2; k < 60; ++k) all.push_back(k);
  wb::fanout_retransmit(fanout, id, all);
  push(seq++, big);
  ASSERT_EQ(viewer.wait_for(61 + 8, 5000), 61u + 8);
  EXPECT_EQ(viewer.wait_for(61 + 9, 200), 61u + 8);
  EXPECT_EQ(wb::fanout_get_stats(fanout).packets_retransmitted, 8u) << "8 KiB of " << packet << "-byte packets";

  // ~100 packets a second, until the layer's rate is measured: then half
  // of it a second, far above the floor.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  uint64_t rate = 0;
  while (!(rate = wb::fanout_get_stats(fanout).layers.at(0).bitrate) && std::chrono::steady_clock::now() < deadline) {
    push(seq++, big);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(rate, 0u);
  const size_t before = viewer.wait_for(seq - 1 + 8, 5000);
  ASSERT_EQ(before, size_t(seq - 1 + 8));
  // The first window (from the answers above) is over by now.
  all.clear();
  for (guint16 k = guint16(seq - 300); k != seq; ++k) all.push_back(k);
  wb::fanout_retransmit(fanout, id, all);
  push(seq++, big);
  const double expected = double(rate) / 8 / 2 / double(packet);
  viewer.wait_for(before + 1 + size_t(expected * 1.5), 1000);
  const double answered = double(wb::fanout_get_stats(fanout).packets_retransmitted - 8);
  EXPECT_GT(answered, 8.0) << "more than the floor";
  EXPECT_GT(answered, expected * 0.7) << "rate " << rate;
  EXPECT_LT(answered, expected * 1.3) << "rate " << rate;
  EXPECT_LT(answered, 300.0);
}

TEST_F(ShardTest, AShardThatIsHeldUpCostsTheOtherShardsViewersNothing) {
  UdpViewer held(port_fd), free(port_fd);
  wb::SubscriberId a = join(held, wb::Rewrite{102, 1});
  wb::SubscriberId b = join(free, wb::Rewrite{102, 2});
  const int held_shard = wb::fanout_shard_of(fanout, a);
  ASSERT_NE(held_shard, wb::fanout_shard_of(fanout, b));
  // Whatever holds a shard up (a slow socket, a CPU taken away) is as good
  // as a job that waits.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  pool->post(unsigned(held_shard), [released] { released.wait(); });
  for (guint16 seq = 1; seq <= 20; ++seq) push(seq, seq == 1 ? kSps : kDelta);
  EXPECT_EQ(free.wait_for(20, 5000), 20u);
  EXPECT_EQ(held.wait_for(1, 50), 0u);
  release.set_value();
  EXPECT_EQ(held.wait_for(20, 5000), 20u);
}

TEST_F(ShardTest, JoinsAndLeavesWhileDeliveringAcrossShards) {
  std::atomic<bool> stop{false};
  std::atomic<guint16> pushed{0};
  std::thread source([&] {
    for (guint16 seq = 1; !stop; ++seq) {
      // A keyframe every 10 packets, so joiners start soon.
      EXPECT_EQ(gst_harness_push(harness, rtp_packet(seq, seq % 10 == 1 ? kSps : kDelta)), GST_FLOW_OK);
      pushed = seq;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<std::unique_ptr<UdpViewer>> viewers;
  std::vector<wb::SubscriberId> ids;
  for (unsigned i = 0; i < 8; ++i) {
    viewers.push_back(std::make_unique<UdpViewer>(port_fd));
    ids.push_back(join(*viewers.back(), wb::Rewrite{102, 0x2000u + i}));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The odd ones leave while the stream flows.
  for (unsigned i = 1; i < 8; i += 2) {
    wb::fanout_unsubscribe(fanout, ids[i]);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const guint16 after_leaving = pushed;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  source.join();
  drain();
  const guint16 last = pushed;
  for (unsigned i = 0; i < 8; ++i) {
    UdpViewer &v = *viewers[i];
    v.wait_for(100000, 200);
    ASSERT_FALSE(v.got.empty()) << "viewer " << i;
    EXPECT_EQ(v.got[0].seq % 10, 1) << "viewer " << i << " started at a keyframe";
    for (size_t k = 1; k < v.got.size(); ++k)
      ASSERT_EQ(v.got[k].seq, guint16(v.got[k - 1].seq + 1)) << "viewer " << i << ": no gap on loopback";
    if (i % 2 == 0)
      EXPECT_EQ(v.got.back().seq, last) << "viewer " << i << " stayed to the end";
    else
      EXPECT_LE(v.got.back().seq, after_leaving) << "viewer " << i << " got nothing after it left";
  }
  EXPECT_EQ(wb::fanout_get_stats(fanout).subscribers, 4u);
  EXPECT_EQ(pool->stats(0).subscriptions + pool->stats(1).subscriptions, 4u);
}

TEST_F(ShardTest, LeavingFreesTheSubscribersSenderOnItsShard) {
  std::vector<std::unique_ptr<UdpViewer>> viewers;
  std::vector<std::weak_ptr<wb::SentCounters>> counters;
  std::vector<wb::SubscriberId> ids;
  for (unsigned i = 0; i < 4; ++i) {
    viewers.push_back(std::make_unique<UdpViewer>(port_fd));
    auto sender = viewers.back()->sender();
    counters.push_back(sender->counters());
    wb::SubscriberId id = wb::fanout_subscribe(fanout, wb::Rewrite{102, i});
    wb::fanout_start(fanout, id, std::move(sender), pool);
    ids.push_back(id);
  }
  push(1, kSps);
  for (auto &v : viewers) ASSERT_EQ(v->wait_for(1, 5000), 1u);
  for (auto id : ids) wb::fanout_unsubscribe(fanout, id);
  drain();
  for (auto &c : counters) EXPECT_TRUE(c.expired()) << "the sender (and its SRTP context) is gone";
  // Each viewer's route is now held by the test alone.
  for (auto &v : viewers) EXPECT_EQ(v->route.use_count(), 1);
  EXPECT_EQ(pool->stats(0).subscriptions + pool->stats(1).subscriptions, 0u);
  EXPECT_EQ(wb::fanout_get_stats(fanout).subscribers, 0u);
}

// Its join runs on its shard after fanout_unsubscribe() has returned: the
// count of viewers waiting for a keyframe must not keep it, or the
// keyframes would be asked for forever.
TEST_F(ShardTest, AViewerGoneBeforeItsJoinRanLeavesNoKeyframeRequestsBehind) {
  wb::fanout_set_keyframe_min_interval(fanout, 0);
  push(1, kSps);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  for (unsigned i = 0; i < pool->size(); ++i) pool->post(i, [released] { released.wait(); });
  UdpViewer viewer(port_fd);
  wb::SubscriberId id = join(viewer, wb::Rewrite{102, 1});
  wb::fanout_unsubscribe(fanout, id);
  release.set_value();
  drain();
  upstream_keyframe_requests();  // the join's own
  for (guint16 seq = 2; seq < 6; ++seq) push(seq, kDelta);
  EXPECT_EQ(upstream_keyframe_requests(), 0u);
  EXPECT_EQ(viewer.wait_for(1, 100), 0u);
}

TEST_F(ShardTest, AFramesPacketsArriveWholeAndInOrder) {
  UdpViewer viewer(port_fd);
  join(viewer, wb::Rewrite{102, 9});
  // One frame: full-sized packets and a short last one, as a payloader
  // makes them, in one buffer list.
  std::vector<guint8> full(1000, 0x41), last(300, 0x41);
  GstBufferList *list = gst_buffer_list_new();
  gst_buffer_list_add(list, rtp_packet(1, kSps));
  for (guint16 seq = 2; seq <= 6; ++seq) gst_buffer_list_add(list, rtp_packet(seq, full));
  gst_buffer_list_add(list, rtp_packet(7, last));
  EXPECT_EQ(gst_pad_push_list(harness->srcpad, list), GST_FLOW_OK);
  ASSERT_EQ(viewer.wait_for(7, 5000), 7u);
  for (unsigned k = 0; k < 7; ++k) EXPECT_EQ(viewer.got[k].seq, 1 + k);
  ASSERT_EQ(viewer.sizes.size(), 7u);
  EXPECT_EQ(viewer.sizes[0], 12u + kSps.size() + 10);
  for (unsigned k = 1; k < 6; ++k) EXPECT_EQ(viewer.sizes[k], 12u + 1000 + 10) << k;
  EXPECT_EQ(viewer.sizes[6], 12u + 300 + 10);
}

TEST_F(ShardTest, AClosedPoolIsNotKeptAndTheNextOneTakesOver) {
  {
    UdpViewer viewer(port_fd);
    wb::SubscriberId id = join(viewer, wb::Rewrite{102, 1});
    push(1, kSps);
    ASSERT_EQ(viewer.wait_for(1, 5000), 1u);
    wb::fanout_unsubscribe(fanout, id);
    drain();
  }
  // The node closes its pool (with its sockets on the port) when it is
  // reconfigured: the fan-out must not hold it open.
  std::weak_ptr<wb::SenderPool> old = pool;
  pool = std::make_shared<wb::SenderPool>(2);
  EXPECT_TRUE(old.expired());
  UdpViewer next(port_fd);
  join(next, wb::Rewrite{102, 2});
  push(2, kSps);
  ASSERT_EQ(next.wait_for(1, 5000), 1u);
  EXPECT_EQ(next.got[0].seq, 2);
  EXPECT_EQ(pool->stats(0).subscriptions + pool->stats(1).subscriptions, 1u);
}

namespace {

// The picture of instant `i` in a layer: its own sequence numbers and RTP
// clock (as each payloader picks its own), one running time for both.
GstBuffer *layer_packet(guint16 seq_base, guint32 ts_base, guint i, const std::vector<guint8> &payload) {
  GstBuffer *buf = rtp_packet(guint16(seq_base + i), payload);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(buf, GST_MAP_WRITE, &rtp);
  gst_rtp_buffer_set_timestamp(&rtp, ts_base + 9000u * i);
  gst_rtp_buffer_unmap(&rtp);
  GST_BUFFER_PTS(buf) = i * 100 * GST_MSECOND;
  return buf;
}

// Feeds one of the fan-out's request pads `sink_%u` (a layer) as an
// upstream element would, and counts the keyframe requests it gets back.
struct LayerFeed {
  GstPad *src = nullptr;
  GstPad *sink = nullptr;
  GstElement *element = nullptr;
  std::atomic<unsigned> keyframe_requests{0};

  LayerFeed(WbFanout *fanout, const char *name, const char *encoding_name = "H264") : element(GST_ELEMENT(fanout)) {
    sink = gst_element_request_pad_simple(element, name);
    src = gst_pad_new("src", GST_PAD_SRC);
    gst_pad_set_element_private(src, this);
    gst_pad_set_event_function(src, +[](GstPad *p, GstObject *, GstEvent *event) -> gboolean {
      auto *self = static_cast<LayerFeed *>(gst_pad_get_element_private(p));
      if (gst_video_event_is_force_key_unit(event)) ++self->keyframe_requests;
      gst_event_unref(event);
      return TRUE;
    });
    gst_pad_set_active(src, TRUE);
    if (!sink || GST_PAD_LINK_FAILED(gst_pad_link(src, sink))) return;
    gst_pad_push_event(src, gst_event_new_stream_start("layer"));
    gchar *caps = g_strdup_printf("application/x-rtp,media=video,encoding-name=%s,clock-rate=90000,payload=96",
                                  encoding_name);
    gst_pad_push_event(src, gst_event_new_caps(gst_caps_from_string(caps)));
    g_free(caps);
    GstSegment segment;
    gst_segment_init(&segment, GST_FORMAT_TIME);
    gst_pad_push_event(src, gst_event_new_segment(&segment));
  }
  ~LayerFeed() {
    gst_pad_set_active(src, FALSE);
    gst_object_unref(src);
    if (sink) {
      gst_element_release_request_pad(element, sink);
      gst_object_unref(sink);
    }
  }
  void push(GstBuffer *buffer) { EXPECT_EQ(gst_pad_push(src, buffer), GST_FLOW_OK); }
};

// Layer 0 on the harness: seq 1 + i, RTP time 9000 i. Layer 1: seq
// 5001 + i, RTP time 700000 + 9000 i, and larger packets to tell them apart.
const std::vector<guint8> kSps1 = {0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 0};
const std::vector<guint8> kDelta1 = {0x41, 0x9a, 0x01, 0x02, 0, 0, 0, 0};

class LayerTest : public ShardTest {
 protected:
  void SetUp() override {
    ShardTest::SetUp();
    GstSegment segment;
    gst_segment_init(&segment, GST_FORMAT_TIME);
    gst_harness_push_event(harness, gst_event_new_segment(&segment));
    layer1 = std::make_unique<LayerFeed>(fanout, "sink_1");
    ASSERT_TRUE(layer1->sink);
  }
  void TearDown() override {
    layer1.reset();
    ShardTest::TearDown();
  }
  void push0(guint i, const std::vector<guint8> &payload) {
    EXPECT_EQ(gst_harness_push(harness, layer_packet(1, 0, i, payload)), GST_FLOW_OK);
  }
  void push1(guint i, const std::vector<guint8> &payload) { layer1->push(layer_packet(5001, 700000, i, payload)); }

  std::unique_ptr<LayerFeed> layer1;
};

constexpr size_t kSrtpOverhead = 12 + 10;

}  // namespace

TEST_F(LayerTest, ASwitchWaitsForTheNewLayersKeyframeAndRunsOnWithoutAGap) {
  EXPECT_EQ(wb::fanout_layer_count(fanout), 2u);
  UdpViewer viewer(port_fd);
  wb::SubscriberId id = join(viewer, wb::Rewrite{102, 77});
  push0(0, kSps);
  push1(0, kSps1);  // not this viewer's layer
  push0(1, kDelta);
  ASSERT_EQ(viewer.wait_for(2, 5000), 2u);
  EXPECT_EQ(wb::fanout_layer_of(fanout, id), 0);
  const unsigned requests_before = layer1->keyframe_requests;
  ASSERT_TRUE(wb::fanout_set_layer(fanout, id, 1));
  EXPECT_EQ(wb::fanout_wanted_layer_of(fanout, id), 1);
  EXPECT_GT(layer1->keyframe_requests.load(), requests_before) << "a keyframe is asked of the layer switched to";
  push1(2, kDelta1);  // no keyframe yet: the viewer stays on layer 0
  push0(2, kDelta);
  ASSERT_EQ(viewer.wait_for(3, 5000), 3u);
  push1(3, kSps1);  // the switch
  push0(3, kDelta);
  push1(4, kDelta1);
  push0(4, kDelta);
  ASSERT_EQ(viewer.wait_for(5, 5000), 5u);
  drain();
  EXPECT_EQ(viewer.wait_for(6, 200), 5u) << "nothing more from layer 0 after the switch";
  for (unsigned k = 0; k < 5; ++k) {
    EXPECT_EQ(viewer.got[k].seq, 1 + k) << "one run of sequence numbers, no gap, no repeat";
    EXPECT_EQ(viewer.timestamps[k], 9000u * k) << "the instant's time, whichever layer carried it";
    EXPECT_EQ(viewer.got[k].ssrc, 77u);
    EXPECT_EQ(viewer.sizes[k], kSrtpOverhead + (k < 3 ? kSps.size() : kSps1.size())) << k;
  }
  EXPECT_EQ(wb::fanout_layer_of(fanout, id), 1);
  wb::FanoutStats stats = wb::fanout_get_stats(fanout);
  EXPECT_EQ(stats.layer_switches, 1u);
  ASSERT_EQ(stats.layers.size(), 2u);
  EXPECT_EQ(stats.layers[1].subscribers, 1u);
  EXPECT_EQ(stats.layers[0].subscribers, 0u);

  // NACKs across the switch: each packet comes from the layer that sent
  // it, with the numbers and time it had.
  wb::fanout_retransmit(fanout, id, {2, 4});
  push1(5, kDelta1);
  ASSERT_EQ(viewer.wait_for(8, 5000), 8u);
  EXPECT_EQ(viewer.got[5].seq, 2);
  EXPECT_EQ(viewer.timestamps[5], 9000u);
  EXPECT_EQ(viewer.sizes[5], kSrtpOverhead + kDelta.size());
  EXPECT_EQ(viewer.got[6].seq, 4);
  EXPECT_EQ(viewer.timestamps[6], 9000u * 3);
  EXPECT_EQ(viewer.sizes[6], kSrtpOverhead + kSps1.size());
  EXPECT_EQ(viewer.got[7].seq, 6);
  EXPECT_EQ(wb::fanout_get_stats(fanout).packets_retransmitted, 2u);
}

TEST_F(LayerTest, AViewerCanStartOnAnyLayerAndAMoveAskedBackIsCancelled) {
  UdpViewer low(port_fd);
  wb::SubscriberId id = wb::fanout_subscribe(fanout, wb::Rewrite{102, 5});
  ASSERT_TRUE(wb::fanout_set_layer(fanout, id, 1));
  EXPECT_FALSE(wb::fanout_set_layer(fanout, id, 2)) << "no such layer";
  wb::fanout_start(fanout, id, low.sender(), pool);
  push0(0, kSps);
  push1(0, kDelta1);
  push1(1, kSps1);
  push0(1, kDelta);
  ASSERT_EQ(low.wait_for(1, 5000), 1u);
  EXPECT_EQ(low.got[0].seq, 5002);
  EXPECT_EQ(low.timestamps[0], 700000u + 9000u);
  EXPECT_EQ(wb::fanout_layer_of(fanout, id), 1);

  ASSERT_TRUE(wb::fanout_set_layer(fanout, id, 0));
  ASSERT_TRUE(wb::fanout_set_layer(fanout, id, 1));  // changed its mind before a keyframe of 0
  push0(2, kSps);
  push1(2, kDelta1);
  ASSERT_EQ(low.wait_for(2, 5000), 2u);
  drain();
  EXPECT_EQ(low.wait_for(3, 200), 2u);
  EXPECT_EQ(low.got[1].seq, 5003) << "still layer 1";
  EXPECT_EQ(wb::fanout_get_stats(fanout).layer_switches, 0u);
}

TEST_F(LayerTest, KeyframeRequestsGoToTheViewersOwnLayer) {
  wb::fanout_set_keyframe_min_interval(fanout, 0);
  UdpViewer a(port_fd), b(port_fd);
  wb::SubscriberId on0 = join(a, wb::Rewrite{102, 1});
  wb::SubscriberId on1 = wb::fanout_subscribe(fanout, wb::Rewrite{102, 2});
  wb::fanout_set_layer(fanout, on1, 1);
  wb::fanout_start(fanout, on1, b.sender(), pool);
  push0(0, kSps);
  push1(0, kSps1);
  ASSERT_EQ(a.wait_for(1, 5000), 1u);
  ASSERT_EQ(b.wait_for(1, 5000), 1u);
  upstream_keyframe_requests();
  const unsigned before1 = layer1->keyframe_requests;
  wb::fanout_request_keyframe(fanout, on1);
  EXPECT_EQ(layer1->keyframe_requests.load(), before1 + 1);
  EXPECT_EQ(upstream_keyframe_requests(), 0u);
  wb::fanout_request_keyframe(fanout, on0);
  EXPECT_EQ(upstream_keyframe_requests(), 1u);
  EXPECT_EQ(layer1->keyframe_requests.load(), before1 + 1);
}

// VP8 (RFC 7741): descriptor with S=1, partition 0; then the frame
// header, whose low bit is 0 on a key frame.
const std::vector<guint8> kVp8Key = {0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0};
const std::vector<guint8> kVp8Delta = {0x10, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 0};

TEST_F(LayerTest, AViewerStaysInTheCodecItJoinedIn) {
  LayerFeed vp8(fanout, "sink_2", "VP8");
  ASSERT_TRUE(vp8.sink);
  auto push2 = [&](guint i, const std::vector<guint8> &payload) {
    vp8.push(layer_packet(9001, 300000, i, payload));
  };
  push2(0, kVp8Delta);  // caps reach the fan-out with the first packet
  EXPECT_EQ(wb::fanout_layer_codecs(fanout)[2], wb::Codec::VP8);
  EXPECT_EQ(wb::fanout_get_codec(fanout), wb::Codec::H264) << "the first layer's";

  UdpViewer h264(port_fd), vp8_viewer(port_fd);
  wb::SubscriberId on_h264 = wb::fanout_subscribe(fanout, wb::Rewrite{102, 1}, wb::Codec::H264);
  wb::SubscriberId on_vp8 = wb::fanout_subscribe(fanout, wb::Rewrite{96, 2}, wb::Codec::VP8);
  EXPECT_EQ(wb::fanout_wanted_layer_of(fanout, on_vp8), 2) << "its codec's first layer";
  EXPECT_FALSE(wb::fanout_set_layer(fanout, on_vp8, 0)) << "it cannot decode H.264";
  EXPECT_FALSE(wb::fanout_set_layer(fanout, on_h264, 2)) << "it was answered H.264";
  EXPECT_TRUE(wb::fanout_set_layer(fanout, on_h264, 1));
  EXPECT_TRUE(wb::fanout_set_layer(fanout, on_h264, 0));
  wb::fanout_start(fanout, on_h264, h264.sender(), pool);
  wb::fanout_start(fanout, on_vp8, vp8_viewer.sender(), pool);
  push0(0, kSps);
  push2(1, kVp8Delta);  // not a keyframe: the gate stays shut
  push2(2, kVp8Key);
  push2(3, kVp8Delta);
  ASSERT_EQ(h264.wait_for(1, 5000), 1u);
  ASSERT_EQ(vp8_viewer.wait_for(2, 5000), 2u);
  drain();
  EXPECT_EQ(h264.wait_for(2, 200), 1u) << "nothing of the VP8 layer";
  EXPECT_EQ(vp8_viewer.got[0].pt, 96);
  EXPECT_EQ(vp8_viewer.sizes[0], kSrtpOverhead + kVp8Key.size()) << "its first packet starts a VP8 key frame";
  EXPECT_EQ(vp8_viewer.timestamps[1] - vp8_viewer.timestamps[0], 9000u);
  EXPECT_EQ(wb::fanout_layer_of(fanout, on_vp8), 2);

  // Its feedback chooses among its codec's layers only.
  const auto rates = wb::fanout_layer_bitrates(fanout, wb::Codec::VP8);
  EXPECT_EQ(rates[0], 0u);
  EXPECT_EQ(rates[1], 0u);

  // A layer keeps the codec its viewers were answered in.
  gst_pad_push_event(vp8.src, gst_event_new_caps(gst_caps_from_string(
                                  "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96")));
  EXPECT_EQ(gst_pad_push(vp8.src, layer_packet(9001, 300000, 4, kSps)), GST_FLOW_NOT_NEGOTIATED);
  EXPECT_EQ(wb::fanout_layer_codecs(fanout)[2], wb::Codec::VP8);
  wb::fanout_unsubscribe(fanout, on_h264);
  wb::fanout_unsubscribe(fanout, on_vp8);
}

// A new viewer's start layer is chosen by the highest of a layer's last
// seconds' rates: one second's measure swings (a broadcast's first seconds
// measured a 1.2 Mbit/s layer at 443 kbit/s in browser-layers), and a
// viewer started above its link loses its first seconds.
TEST_F(LayerTest, ThePeakRateIsTheHighestOfTheLastSecondsMeasures) {
  std::vector<guint8> big(kDelta), small(kDelta);
  big.resize(1000, 0x55);
  const gint64 start = g_get_monotonic_time();
  guint i = 0;
  auto push_for = [&](gint64 until_us, const std::vector<guint8> &payload) {
    while (g_get_monotonic_time() - start < until_us) {
      push0(i++, payload);
      g_usleep(10000);
    }
  };
  push_for(1200000, big);    // ~100 packets of 1 kB a second: ~800 kbit/s
  push_for(3400000, small);  // ~100 of 4 bytes (and their RTP headers): ~13 kbit/s
  const auto now = wb::fanout_layer_bitrates(fanout);
  const auto peak = wb::fanout_layer_bitrates(fanout, wb::Codec::Unknown, true);
  EXPECT_LT(now[0], 50000u) << "the last second's";
  EXPECT_GT(peak[0], 500000u) << "the first second's, within the last " << wb::kPeakSeconds;
  EXPECT_EQ(peak[1], 0u) << "nothing measured on layer 1";
}

TEST_F(LayerTest, APausedViewerIsSentNothingAndResumesWhereItsNumbersStopped) {
  UdpViewer viewer(port_fd);
  wb::SubscriberId id = join(viewer, wb::Rewrite{102, 7});
  push0(0, kSps);
  push0(1, kDelta);
  ASSERT_EQ(viewer.wait_for(2, 5000), 2u);
  ASSERT_TRUE(wb::fanout_set_layer(fanout, id, wb::kPaused));
  EXPECT_EQ(wb::fanout_wanted_layer_of(fanout, id), int(wb::kPaused));
  drain();
  for (guint i = 2; i < 6; ++i) {
    push0(i, i == 3 ? kSps : kDelta);
    push1(i, i == 3 ? kSps1 : kDelta1);
  }
  drain();
  EXPECT_EQ(viewer.wait_for(3, 200), 2u) << "nothing while paused, keyframes included";
  EXPECT_EQ(wb::fanout_layer_of(fanout, id), -1);
  wb::fanout_request_keyframe(fanout, id);  // its PLIs cost nothing while paused
  ASSERT_TRUE(wb::fanout_set_layer(fanout, id, 1));
  push1(6, kDelta1);
  push1(7, kSps1);
  push1(8, kDelta1);
  ASSERT_EQ(viewer.wait_for(4, 5000), 4u);
  EXPECT_EQ(viewer.got[2].seq, 3) << "on from where its numbers stopped";
  EXPECT_EQ(viewer.got[3].seq, 4);
  EXPECT_EQ(viewer.timestamps[2], 9000u * 7) << "its clock ran on through the pause";
  EXPECT_EQ(wb::fanout_layer_of(fanout, id), 1);
  wb::fanout_unsubscribe(fanout, id);
  drain();
  EXPECT_EQ(wb::fanout_get_stats(fanout).layers[1].subscribers, 0u);
}

// A probing viewer's padding: padding-only packets on its RTX stream (its
// own payload type, SSRC and numbering; the frame's RTP time), at the rate
// asked, sent with its frames, and nothing once the rate is back to 0. Its
// media is untouched.
TEST_F(ShardTest, PaddingGoesOnTheViewersRtxStreamAtTheRateAskedWithItsFrames) {
  UdpViewer viewer(port_fd);
  wb::SubscriberId id = wb::fanout_subscribe(fanout, wb::Rewrite{102, 7});
  EXPECT_FALSE(wb::fanout_set_probe_rate(fanout, id, 100000)) << "no RTX stream, no padding";
  wb::fanout_set_padding_stream(fanout, id, 103, 8);
  wb::fanout_start(fanout, id, viewer.sender(), pool);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(harness, gst_event_new_segment(&segment));
  EXPECT_EQ(gst_harness_push(harness, layer_packet(1, 0, 0, kSps)), GST_FLOW_OK);
  ASSERT_EQ(viewer.wait_for(1, 5000), 1u);

  constexpr uint64_t kRate = 800000;
  ASSERT_TRUE(wb::fanout_set_probe_rate(fanout, id, kRate));
  // A live stream's frames, 40 ms apart: the first padded delivery only
  // starts the clock.
  const gint64 first = g_get_monotonic_time();
  for (guint i = 1; i <= 10; ++i) {
    EXPECT_EQ(gst_harness_push(harness, layer_packet(1, 0, i, kDelta)), GST_FLOW_OK);
    drain();
    if (i < 10) std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  const double padded_seconds = double(g_get_monotonic_time() - first) / G_USEC_PER_SEC;
  ASSERT_TRUE(wb::fanout_set_probe_rate(fanout, id, 0));
  for (guint i = 11; i <= 12; ++i) EXPECT_EQ(gst_harness_push(harness, layer_packet(1, 0, i, kDelta)), GST_FLOW_OK);
  drain();
  viewer.wait_for(100000, 300);

  size_t media = 0, padding = 0, padding_bytes = 0;
  uint16_t next_seq = 0;
  for (size_t k = 0; k < viewer.got.size(); ++k) {
    const Header &h = viewer.got[k];
    if (h.ssrc == 7) {
      EXPECT_EQ(h.pt, 102);
      EXPECT_EQ(h.seq, 1 + media) << "the media's numbering is its own";
      EXPECT_EQ(viewer.timestamps[k], 9000u * media);
      ++media;
      continue;
    }
    ASSERT_EQ(h.ssrc, 8u);
    EXPECT_EQ(h.pt, 103);
    if (padding) EXPECT_EQ(h.seq, next_seq) << "padding numbered in a run";
    next_seq = uint16_t(h.seq + 1);
    EXPECT_EQ(viewer.sizes[k], wb::SrtpSender::kPaddingPacketSize + 10);
    EXPECT_EQ(viewer.timestamps[k] % 9000u, 0u) << "a frame's RTP time";
    EXPECT_GE(viewer.timestamps[k], 9000u * 2) << "none before the padded frames";
    EXPECT_LE(viewer.timestamps[k], 9000u * 10) << "none once the rate is 0";
    ++padding;
    padding_bytes += wb::SrtpSender::kPaddingPacketSize;
  }
  EXPECT_EQ(media, 13u);
  // In the layers' terms: each padding packet counts its RTP bytes and
  // the headers a small packet adds (fan-out.cpp, kPaddingCost).
  const double asked = double(kRate) / 8 * padded_seconds * double(wb::SrtpSender::kPaddingPacketSize) /
                       (double(wb::SrtpSender::kPaddingPacketSize + 44) / 1.04);
  std::cout << "[ padding  ] " << padding << " packets, " << padding_bytes << " bytes in " << padded_seconds
            << " s; asked " << asked << "\n";
  EXPECT_GE(double(padding_bytes), asked * 0.7);
  EXPECT_LE(double(padding_bytes), asked * 1.1 + wb::SrtpSender::kPaddingPacketSize);
  EXPECT_EQ(wb::fanout_get_stats(fanout).padding_bytes, padding * (wb::SrtpSender::kPaddingPacketSize + 10));
}

// Probes are held against one budget from their start, each at the full
// rate its padding rises to: what a new one may take is the budget less
// those under way, and a probe that ends or a viewer who leaves gives its
// share back.
TEST_F(ShardTest, ProbesUnderWayTakeTheirFullRateFromThePaddingRoom) {
  UdpViewer a_viewer(port_fd), b_viewer(port_fd);
  const wb::SubscriberId a = wb::fanout_subscribe(fanout, wb::Rewrite{102, 7});
  const wb::SubscriberId b = wb::fanout_subscribe(fanout, wb::Rewrite{102, 9});
  wb::fanout_set_padding_stream(fanout, a, 103, 8);
  wb::fanout_set_padding_stream(fanout, b, 103, 10);
  wb::fanout_start(fanout, a, a_viewer.sender(), pool);
  wb::fanout_start(fanout, b, b_viewer.sender(), pool);
  const uint64_t budget = wb::fanout_padding_room(fanout);
  ASSERT_GE(budget, 3000000u) << "a small audience may probe";

  ASSERT_TRUE(wb::fanout_set_probe_rate(fanout, a, 100000, budget / 2));
  EXPECT_EQ(wb::fanout_padding_room(fanout), budget - budget / 2) << "from its first tenth, at its full rate";
  ASSERT_TRUE(wb::fanout_set_probe_rate(fanout, a, 400000, budget / 2));
  EXPECT_EQ(wb::fanout_padding_room(fanout), budget - budget / 2) << "counted once as it rises";
  ASSERT_TRUE(wb::fanout_set_probe_rate(fanout, b, 100000, budget / 2));
  EXPECT_EQ(wb::fanout_padding_room(fanout), 0u);
  ASSERT_TRUE(wb::fanout_set_probe_rate(fanout, a, 0, 0));
  EXPECT_EQ(wb::fanout_padding_room(fanout), budget / 2) << "an ended probe gives its share back";
  wb::fanout_unsubscribe(fanout, b);
  EXPECT_EQ(wb::fanout_padding_room(fanout), budget) << "and so does a viewer who leaves";
  wb::fanout_unsubscribe(fanout, a);
  drain();
}

// A server near its limit probes nobody: no room while a sender shard has
// more than a few media batches waiting, and the room is back once it has
// caught up.
TEST_F(ShardTest, NoProbeStartsWhileASenderShardIsBehind) {
  UdpViewer viewer(port_fd);
  const wb::SubscriberId id = wb::fanout_subscribe(fanout, wb::Rewrite{102, 7});
  wb::fanout_set_padding_stream(fanout, id, 103, 8);
  wb::fanout_start(fanout, id, viewer.sender(), pool);
  drain();
  const uint64_t budget = wb::fanout_padding_room(fanout);
  ASSERT_GT(budget, 0u);

  std::mutex mutex;
  std::condition_variable wake;
  bool go = false;
  pool->post(0, [&] {
    std::unique_lock<std::mutex> lock(mutex);
    wake.wait(lock, [&] { return go; });
  });
  for (int i = 0; i < 4; ++i) pool->post(0, [] {}, true);
  EXPECT_EQ(wb::fanout_padding_room(fanout), budget) << "4 batches behind: keeping up";
  for (int i = 0; i < 16; ++i) pool->post(0, [] {}, true);
  EXPECT_EQ(pool->backlog(), 20u);
  EXPECT_EQ(wb::fanout_padding_room(fanout), 0u) << "20 behind";
  {
    std::lock_guard<std::mutex> lock(mutex);
    go = true;
  }
  wake.notify_all();
  drain();
  EXPECT_EQ(pool->backlog(), 0u);
  EXPECT_EQ(wb::fanout_padding_room(fanout), budget);
  wb::fanout_unsubscribe(fanout, id);
  drain();
}
