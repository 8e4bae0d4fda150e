#include "fanout.h"

#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video-event.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fanout/packethistory.h"
#include "keyframes/keyframerequests.h"
#include "transport/srtpsender.h"

GST_DEBUG_CATEGORY_STATIC(wb_fanout_debug);
#define GST_CAT_DEFAULT wb_fanout_debug

namespace {

using wb::Codec;
using wb::KeyframeRequests;
using wb::SubscriberId;

struct Lane;

struct Subscriber {
  Subscriber(SubscriberId i, const wb::Rewrite &r) : id(i), rewrite(r) {}
  ~Subscriber() {
    if (pad) gst_object_unref(pad);
  }
  Subscriber(const Subscriber &) = delete;
  Subscriber &operator=(const Subscriber &) = delete;

  const SubscriberId id;
  const wb::Rewrite rewrite;
  GstPad *pad = nullptr;  // only for a transport that takes buffers
  // Set once, before `started`: the shard that delivers (-1: the streaming
  // thread) and its pool and lanes, and the direct sender (null: packets go
  // to the pad). Weak: the lanes hold their subscribers.
  int shard = -1;
  std::weak_ptr<wb::SenderPool> pool;
  std::weak_ptr<std::vector<std::unique_ptr<Lane>>> lanes;
  std::unique_ptr<wb::SrtpSender> direct;
  std::atomic<bool> started{false};
  std::atomic<bool> has_keyframe{false};
  // Counted in Core::waiting until its gate opens or it leaves, whichever
  // comes first (the one that clears this).
  std::atomic<bool> counted_waiting{false};
  gint64 started_us = 0;  // monotonic; set before `started`, for the keyframe wait

  // Sequence numbers the viewer reported lost (NACK, in the viewer's
  // numbering), from its transport's thread, for the delivering thread:
  // only that thread may use the sender's SRTP context.
  std::mutex nack_lock;
  std::vector<uint16_t> nacked;
  std::atomic<bool> has_nacks{false};

  // The delivering thread only.
  size_t lane_index = 0;
  uint16_t last_seq = 0;   // the newest packet sent, in the shared numbering
  uint32_t delivered = 0;  // packets sent, for retransmit()
  gint64 budget_start_us = 0;
  unsigned budget_used = 0;
  gint64 shown_to_pad_us = 0;  // see deliver_to()
};

// Retransmissions per subscriber and second at most: a NACK names up to
// 17 packets, so without a bound one viewer could make us send far more
// than the stream (800 kbps video is ~100 packets a second).
constexpr unsigned kMaxRetransmitsPerSecond = 200;
// NACKed packets a subscriber may have waiting.
constexpr size_t kMaxPendingNacks = 512;

using SubscriberList = std::vector<std::shared_ptr<Subscriber>>;

// What the streaming thread and the shards share: it outlives the element
// while a shard still has a batch of it.
struct Core {
  std::string name;  // the element's, for logs
  // Written by the streaming thread per batch; read at NACKs by whichever
  // thread delivers the viewer.
  std::mutex history_lock;
  wb::PacketHistory history;
  // Started video subscribers still waiting for a keyframe: while any are,
  // the streaming thread repeats the request.
  std::atomic<int> waiting{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> packets_out{0};  // retransmissions not included
  // From a video subscriber's start to the keyframe its delivery starts with.
  wb::Histogram keyframe_wait{wb::buckets::kKeyframeWaitSeconds};
  std::atomic<uint64_t> retransmitted{0};
  std::atomic<uint64_t> nacked_not_kept{0};
};

// One shard's subscribers of this stream; the list is touched only by the
// shard's thread (joins and leaves arrive as jobs), the count by others.
struct alignas(64) Lane {
  SubscriberList subscribers;
  std::atomic<unsigned> count{0};
};

// One per shard, fixed. Jobs hold these, never the pool: a job must not
// be where the pool (whose destructor joins its threads) is released.
using Lanes = std::vector<std::unique_ptr<Lane>>;

struct Sharding {
  // Weak: the audience owns its pool and closes it (and its sockets on the
  // ICE-lite port) with the port; a fan-out must not keep it open.
  std::weak_ptr<wb::SenderPool> pool;
  std::shared_ptr<Lanes> lanes;
};

// One batch of the shared stream, inspected once, read by every shard.
struct Batch {
  Batch() = default;
  Batch(const Batch &) = delete;
  Batch &operator=(const Batch &) = delete;
  ~Batch() {
    for (size_t i = 0; i < buffers.size(); ++i) {
      gst_buffer_unmap(buffers[i], &maps[i]);
      gst_buffer_unref(buffers[i]);
    }
  }
  // Index i of each vector is one well-formed packet.
  std::vector<GstBuffer *> buffers;
  std::vector<GstMapInfo> maps;
  std::vector<wb::RtpPacketRef> refs;
  std::vector<bool> starts_keyframe;
  bool video = false;
};

struct FanoutState {
  std::mutex lock;
  std::unordered_map<SubscriberId, std::shared_ptr<Subscriber>> subscribers;
  // Copy-on-write: the subscribers with a pad, which the streaming thread
  // delivers without holding the lock while they come and go.
  std::shared_ptr<const SubscriberList> with_pads = std::make_shared<SubscriberList>();
  Sharding sharding;  // set at the first subscriber started on a shard
  GstCaps *caps = nullptr;
  Codec codec = Codec::Unknown;
  GstSegment segment;
  SubscriberId next_id = 1;
  unsigned next_pad = 0;
  KeyframeRequests keyframes;
  std::atomic<wb::ReportTime> report_time{wb::ReportTime::Capture};
  std::atomic<uint64_t> packets_in{0};
  std::shared_ptr<Core> core = std::make_shared<Core>();
};

}  // namespace

struct _WbFanout {
  GstElement parent;
  GstPad *sinkpad;
  FanoutState *state;
};

G_DEFINE_TYPE(WbFanout, wb_fanout, GST_TYPE_ELEMENT)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-rtp"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src_%u", GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS("application/x-rtp"));

namespace {

std::shared_ptr<Subscriber> find(WbFanout *self, SubscriberId id) {
  std::lock_guard<std::mutex> lock(self->state->lock);
  auto it = self->state->subscribers.find(id);
  return it == self->state->subscribers.end() ? nullptr : it->second;
}

void send_keyframe_request(WbFanout *self) {
  GST_DEBUG_OBJECT(self, "asking upstream for a keyframe");
  gst_pad_push_event(self->sinkpad,
                     gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
}

uint16_t sequence_of(const wb::RtpPacketRef &packet) {
  return uint16_t(packet.data[2] << 8 | packet.data[3]);
}

// The subscriber's copy of packet `i` of `batch` as a buffer: a rewritten
// header, followed by the shared payload memory (referenced, not copied).
GstBuffer *pad_packet(const Batch &batch, size_t i, const wb::Rewrite &rewrite) {
  const wb::RtpPacketRef &ref = batch.refs[i];
  GstBuffer *out = gst_buffer_new();
  GstMemory *mem = gst_allocator_alloc(nullptr, ref.header_len, nullptr);
  GstMapInfo map;
  gst_memory_map(mem, &map, GST_MAP_WRITE);
  memcpy(map.data, ref.data, ref.header_len);
  map.data[1] = (map.data[1] & 0x80) | (rewrite.payload_type & 0x7f);
  GST_WRITE_UINT16_BE(map.data + 2, uint16_t(sequence_of(ref) + rewrite.seq_offset));
  GST_WRITE_UINT32_BE(map.data + 4, GST_READ_UINT32_BE(map.data + 4) + rewrite.ts_offset);
  GST_WRITE_UINT32_BE(map.data + 8, rewrite.ssrc);
  gst_memory_unmap(mem, &map);
  gst_buffer_append_memory(out, mem);
  gst_buffer_copy_into(out, batch.buffers[i],
                       GstBufferCopyFlags(GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_FLAGS |
                                          GST_BUFFER_COPY_TIMESTAMPS),
                       ref.header_len, -1);
  return out;
}

// When, on the monotonic clock, the first sample of `buffer` was taken:
// its running time on the pipeline clock, seen from now. Audio and video
// mapped this way keep their sync in the viewers' sender reports. `now`
// when the buffer has no timestamp or the element no clock.
gint64 sampled_time_us(WbFanout *self, GstBuffer *buffer, gint64 now) {
  GstClockTime pts = GST_BUFFER_PTS(buffer);
  GstClock *clock = GST_CLOCK_TIME_IS_VALID(pts) ? gst_element_get_clock(GST_ELEMENT(self)) : nullptr;
  if (!clock) return now;
  GstClockTime running;
  {
    std::lock_guard<std::mutex> lock(self->state->lock);
    running = gst_segment_to_running_time(&self->state->segment, GST_FORMAT_TIME, pts);
  }
  GstClockTime clock_now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  if (!GST_CLOCK_TIME_IS_VALID(running) || !GST_CLOCK_TIME_IS_VALID(clock_now)) return now;
  GstClockTimeDiff age = GstClockTimeDiff(clock_now) -
                         GstClockTimeDiff(running + gst_element_get_base_time(GST_ELEMENT(self)));
  return now - age / GstClockTimeDiff(GST_USECOND);
}

// Answers a subscriber's NACKs from the shared history, through its
// sender. Returns the bytes queued. The delivering thread.
uint64_t retransmit(Core &core, Subscriber &sub, wb::SendBatch &out, gint64 now) {
  std::vector<uint16_t> seqs;
  {
    std::lock_guard<std::mutex> lock(sub.nack_lock);
    seqs.swap(sub.nacked);
    sub.has_nacks.store(false, std::memory_order_relaxed);
  }
  if (now - sub.budget_start_us >= G_USEC_PER_SEC) {
    sub.budget_start_us = now;
    sub.budget_used = 0;
  }
  // Copied out under the lock: the streaming thread overwrites the history.
  std::vector<std::vector<uint8_t>> copies;
  std::vector<wb::RtpPacketRef> found;
  uint64_t not_kept = 0, over_budget = 0;
  {
    std::lock_guard<std::mutex> lock(core.history_lock);
    for (uint16_t viewer_seq : seqs) {
      const uint16_t seq = uint16_t(viewer_seq - sub.rewrite.seq_offset);
      // Only what this subscriber was sent: not what came before its keyframe.
      if (uint16_t(sub.last_seq - seq) >= sub.delivered) continue;
      const wb::RtpPacketRef *packet = core.history.find(seq);
      if (!packet) {
        ++not_kept;
      } else if (sub.budget_used >= kMaxRetransmitsPerSecond) {
        ++over_budget;
      } else {
        ++sub.budget_used;
        copies.emplace_back(packet->data, packet->data + packet->size);
        found.push_back(*packet);
      }
    }
  }
  for (size_t i = 0; i < found.size(); ++i) found[i].data = copies[i].data();
  if (not_kept || over_budget)
    GST_DEBUG("%s: subscriber %" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT " NACKed packets no longer kept, %"
              G_GUINT64_FORMAT " over the retransmission budget", core.name.c_str(), sub.id, not_kept, over_budget);
  core.nacked_not_kept += not_kept;
  core.retransmitted += found.size();
  if (found.empty()) return 0;
  GST_LOG("%s: subscriber %" G_GUINT64_FORMAT ": retransmitting %zu packets", core.name.c_str(), sub.id,
          found.size());
  return sub.direct->send(found.data(), found.size(), sub.rewrite, out);
}

// Everything one subscriber does with one batch: keyframe gate, NACK
// answers, rewrite, send. Returns the bytes sent and adds the packets to
// `packets`. The delivering thread.
uint64_t deliver_to(Core &core, Subscriber &sub, const Batch &batch, wb::SendBatch &out, gint64 now,
                    uint64_t &packets) {
  const size_t n = batch.refs.size();
  size_t first = 0;
  if (!sub.has_keyframe.load(std::memory_order_relaxed)) {
    while (first < n && !batch.starts_keyframe[first]) ++first;
    if (first == n) return 0;
    GST_DEBUG("%s: subscriber %" G_GUINT64_FORMAT ": keyframe, starting delivery", core.name.c_str(), sub.id);
    sub.has_keyframe.store(true, std::memory_order_relaxed);
    if (sub.counted_waiting.exchange(false)) {
      core.waiting.fetch_sub(1);
      core.keyframe_wait.observe(double(now - sub.started_us) / G_USEC_PER_SEC);
    }
  }
  uint64_t bytes = 0;
  // Before the new packets, so these stay the last the sender counted.
  if (sub.has_nacks.load(std::memory_order_acquire) && sub.direct) bytes += retransmit(core, sub, out, now);
  sub.last_seq = sequence_of(batch.refs[n - 1]);
  sub.delivered += uint32_t(n - first);
  packets += n - first;
  if (sub.direct) {
    bytes += sub.direct->send(batch.refs.data() + first, n - first, sub.rewrite, out);
    // A viewer's webrtcbin writes the RTCP sender reports a browser needs
    // for lip sync from the packets it sees: show it one a second. It sends
    // the very same SRTP packet again, which the viewer drops as a replay.
    if (sub.pad && now - sub.shown_to_pad_us >= G_USEC_PER_SEC) {
      sub.shown_to_pad_us = now;
      gst_pad_push(sub.pad, pad_packet(batch, first, sub.rewrite));
    }
    return bytes;
  }
  if (!sub.pad) return bytes;
  // A viewer's flow result never reaches the shared stream: a dead or
  // flushing transport must not stop the others.
  if (n - first == 1) {
    GstBuffer *only = pad_packet(batch, first, sub.rewrite);
    bytes += gst_buffer_get_size(only);
    gst_pad_push(sub.pad, only);
    return bytes;
  }
  GstBufferList *list = gst_buffer_list_new_sized(guint(n - first));
  for (size_t i = first; i < n; ++i) {
    GstBuffer *packet = pad_packet(batch, i, sub.rewrite);
    bytes += gst_buffer_get_size(packet);
    gst_buffer_list_add(list, packet);
  }
  gst_pad_push_list(sub.pad, list);
  return bytes;
}

// A shard's job for one batch: its own subscribers of this stream.
void deliver_on_shard(Core &core, Lane &lane, const Batch &batch) {
  wb::SendBatch &out = wb::SendBatch::for_this_thread();
  const gint64 now = g_get_monotonic_time();
  uint64_t bytes = 0, packets = 0;
  for (const auto &sub : lane.subscribers) bytes += deliver_to(core, *sub, batch, out, now, packets);
  out.flush();
  core.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
  core.packets_out.fetch_add(packets, std::memory_order_relaxed);
}

// Takes `sub` off its shard, after the batches already queued for it; it
// (its sender and SRTP context) is freed on the shard's thread.
void leave_shard(std::shared_ptr<Subscriber> sub) {
  const unsigned shard = unsigned(sub->shard);
  std::shared_ptr<Lanes> lanes = sub->lanes.lock();
  if (!lanes) return;
  (*lanes)[shard]->count.fetch_sub(1);
  // Without its pool (closed), the subscriber stays in its lane until the
  // lanes go, with the fan-out's next pool or the fan-out itself.
  std::shared_ptr<wb::SenderPool> pool = sub->pool.lock();
  if (!pool) return;
  pool->post(shard, [lanes, shard, sub = std::move(sub)]() mutable {
    SubscriberList &list = (*lanes)[shard]->subscribers;
    const size_t at = sub->lane_index;
    if (at < list.size() && list[at] == sub) {
      list[at] = std::move(list.back());
      list[at]->lane_index = at;
      list.pop_back();
    }
    sub.reset();
  });
  pool->release(shard);
}

// Takes ownership of `buffers`.
void deliver(WbFanout *self, std::vector<GstBuffer *> buffers) {
  FanoutState &st = *self->state;
  std::shared_ptr<const SubscriberList> with_pads;
  Sharding sharding;
  Codec codec;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    with_pads = st.with_pads;
    sharding = st.sharding;
    codec = st.codec;
  }
  Core &core = *st.core;

  // Inspect and map every packet once, for every subscriber.
  auto batch = std::make_shared<Batch>();
  batch->video = wb::codec_is_video(codec);
  const gint64 now = g_get_monotonic_time();
  const gint64 sampled_us = buffers.empty() || st.report_time.load(std::memory_order_relaxed) == wb::ReportTime::Send
                                ? now
                                : sampled_time_us(self, buffers.front(), now);
  bool any_keyframe = false;
  for (GstBuffer *buffer : buffers) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(buffer, GST_MAP_READ, &rtp)) {
      gst_buffer_unref(buffer);
      continue;
    }
    const guint header_len = gst_rtp_buffer_get_header_len(&rtp);
    const bool keyframe = wb::rtp_payload_starts_keyframe(
        codec, static_cast<const uint8_t *>(gst_rtp_buffer_get_payload(&rtp)), gst_rtp_buffer_get_payload_len(&rtp));
    gst_rtp_buffer_unmap(&rtp);
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
      gst_buffer_unref(buffer);
      continue;
    }
    batch->buffers.push_back(buffer);
    batch->maps.push_back(map);
    batch->refs.push_back({map.data, map.size, header_len, sampled_us});
    batch->starts_keyframe.push_back(keyframe);
    any_keyframe |= keyframe && batch->video;
  }
  st.packets_in += buffers.size();
  if (any_keyframe) st.keyframes.keyframe_sent();
  if (!batch->refs.empty()) {
    {
      std::lock_guard<std::mutex> lock(core.history_lock);
      for (const auto &ref : batch->refs) core.history.record(ref);
    }
    // Each shard with subscribers of this stream gets the batch once.
    if (std::shared_ptr<wb::SenderPool> pool = sharding.pool.lock())
      for (unsigned i = 0; i < sharding.lanes->size(); ++i) {
        if (!(*sharding.lanes)[i]->count.load(std::memory_order_relaxed)) continue;
        pool->post(i, [core = st.core, lanes = sharding.lanes, i, batch] {
          deliver_on_shard(*core, *(*lanes)[i], *batch);
        }, true);
      }
    wb::SendBatch &out = wb::SendBatch::for_this_thread();
    uint64_t bytes = 0, packets = 0;
    for (const auto &sub : *with_pads)
      if (sub->started.load(std::memory_order_acquire)) bytes += deliver_to(core, *sub, *batch, out, now, packets);
    out.flush();
    core.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
    core.packets_out.fetch_add(packets, std::memory_order_relaxed);
  }
  if (batch->video && st.keyframes.due(KeyframeRequests::Clock::now(), core.waiting.load() > 0))
    send_keyframe_request(self);
}

GstFlowReturn sink_chain(GstPad *, GstObject *parent, GstBuffer *buffer) {
  deliver(WB_FANOUT(parent), {buffer});
  return GST_FLOW_OK;
}

GstFlowReturn sink_chain_list(GstPad *, GstObject *parent, GstBufferList *list) {
  guint n = gst_buffer_list_length(list);
  std::vector<GstBuffer *> buffers(n);
  for (guint i = 0; i < n; ++i) buffers[i] = gst_buffer_ref(gst_buffer_list_get(list, i));
  gst_buffer_list_unref(list);
  deliver(WB_FANOUT(parent), std::move(buffers));
  return GST_FLOW_OK;
}

void push_to_pads(WbFanout *self, GstEvent *event) {
  std::shared_ptr<const SubscriberList> with_pads;
  {
    std::lock_guard<std::mutex> lock(self->state->lock);
    with_pads = self->state->with_pads;
  }
  for (const auto &sub : *with_pads) gst_pad_push_event(sub->pad, gst_event_ref(event));
  gst_event_unref(event);
}

gboolean sink_event(GstPad *, GstObject *parent, GstEvent *event) {
  WbFanout *self = WB_FANOUT(parent);
  FanoutState &st = *self->state;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      const GstStructure *s = gst_caps_get_structure(caps, 0);
      const gchar *name = gst_structure_get_string(s, "encoding-name");
      Codec codec = wb::codec_from_encoding_name(name ? name : "");
      GST_INFO_OBJECT(self, "stream caps %" GST_PTR_FORMAT, caps);
      {
        std::lock_guard<std::mutex> lock(st.lock);
        gst_caps_replace(&st.caps, caps);
        st.codec = codec;
      }
      gst_event_unref(event);
      // Each pad announces the caps its own transport negotiated.
      return codec != Codec::Unknown;
    }
    case GST_EVENT_STREAM_START:
    case GST_EVENT_TAG:
    case GST_EVENT_GAP:
      gst_event_unref(event);
      return TRUE;
    case GST_EVENT_CUSTOM_DOWNSTREAM:
      // The encoder's "here is the keyframe you asked for" is for payloaders
      // upstream of us; viewers' transports have nothing to do with it.
      if (gst_video_event_is_force_key_unit(event)) {
        gst_event_unref(event);
        return TRUE;
      }
      push_to_pads(self, event);
      return TRUE;
    case GST_EVENT_SEGMENT: {
      {
        std::lock_guard<std::mutex> lock(st.lock);
        gst_event_copy_segment(event, &st.segment);
      }
      push_to_pads(self, event);
      return TRUE;
    }
    default:
      push_to_pads(self, event);
      return TRUE;
  }
}

gboolean sink_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  // Allocation is not a question for viewers' transports (the default would
  // ask each pad's in turn).
  if (GST_QUERY_TYPE(query) == GST_QUERY_ALLOCATION) return FALSE;
  return gst_pad_query_default(pad, parent, query);
}

gboolean src_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  WbFanout *self = WB_FANOUT(parent);
  if (gst_video_event_is_force_key_unit(event)) {
    GST_DEBUG_OBJECT(self, "keyframe request from pad %s", GST_PAD_NAME(pad));
    SubscriberId from = 0;
    {
      std::lock_guard<std::mutex> lock(self->state->lock);
      for (const auto &sub : *self->state->with_pads)
        if (sub->pad == pad) from = sub->id;
    }
    if (self->state->keyframes.request(KeyframeRequests::Clock::now(), from)) send_keyframe_request(self);
  }
  // Nothing else a single viewer says (QoS, reconfigure, navigation) may
  // steer the shared stream.
  gst_event_unref(event);
  return TRUE;
}

gboolean src_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  WbFanout *self = WB_FANOUT(parent);
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      GstCaps *caps = gst_pad_get_current_caps(pad);
      if (!caps) caps = gst_pad_get_pad_template_caps(pad);
      gst_query_set_caps_result(query, caps);
      gst_caps_unref(caps);
      return TRUE;
    }
    case GST_QUERY_LATENCY:
      return gst_pad_peer_query(self->sinkpad, query);
    default:
      return FALSE;
  }
}

}  // namespace

static void wb_fanout_finalize(GObject *object) {
  WbFanout *self = WB_FANOUT(object);
  // Subscribers nobody unsubscribed still sit in their shards' lanes.
  for (auto &entry : self->state->subscribers)
    if (entry.second->shard >= 0) leave_shard(std::move(entry.second));
  if (self->state->caps) gst_caps_unref(self->state->caps);
  delete self->state;
  G_OBJECT_CLASS(wb_fanout_parent_class)->finalize(object);
}

static void wb_fanout_class_init(WbFanoutClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->finalize = wb_fanout_finalize;
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Broadcast fan-out", "Filter/Network/RTP",
      "Shares one RTP stream with many viewers (keyframe gate, per-viewer rewrite, sender shards)",
      "webrtcbroadcast developers");
  GST_DEBUG_CATEGORY_INIT(wb_fanout_debug, "broadcastfanout", 0, "webrtcbroadcast fan-out");
}

static void wb_fanout_init(WbFanout *self) {
  self->state = new FanoutState();
  gst_segment_init(&self->state->segment, GST_FORMAT_TIME);
  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, sink_chain);
  gst_pad_set_chain_list_function(self->sinkpad, sink_chain_list);
  gst_pad_set_event_function(self->sinkpad, sink_event);
  gst_pad_set_query_function(self->sinkpad, sink_query);
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);
}

namespace wb {

GstCaps *fanout_get_stream_caps(WbFanout *fanout) {
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  return fanout->state->caps ? gst_caps_ref(fanout->state->caps) : nullptr;
}

Codec fanout_get_codec(WbFanout *fanout) {
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  return fanout->state->codec;
}

namespace {

std::shared_ptr<Subscriber> add_subscriber(WbFanout *fanout, const Rewrite &rewrite, GstPad *pad) {
  FanoutState &st = *fanout->state;
  std::lock_guard<std::mutex> lock(st.lock);
  if (st.core->name.empty()) st.core->name = GST_OBJECT_NAME(fanout);
  auto sub = std::make_shared<Subscriber>(st.next_id++, rewrite);
  sub->pad = pad;
  st.subscribers.emplace(sub->id, sub);
  if (pad) {
    auto list = std::make_shared<SubscriberList>(*st.with_pads);
    list->push_back(sub);
    st.with_pads = std::move(list);
  }
  return sub;
}

// The fan-out's sharding, and the pool it delivers with: `pool`, unless
// another pool still has subscribers of it. A node restarted with new
// settings brings a new pool.
std::pair<Sharding, std::shared_ptr<SenderPool>> sharding_for(WbFanout *fanout, const std::shared_ptr<SenderPool> &pool) {
  FanoutState &st = *fanout->state;
  std::lock_guard<std::mutex> lock(st.lock);
  std::shared_ptr<SenderPool> current = st.sharding.pool.lock();
  if (current == pool) return {st.sharding, current};
  if (current) {
    unsigned active = 0;
    for (const auto &lane : *st.sharding.lanes) active += lane->count.load();
    if (active) {
      GST_WARNING_OBJECT(fanout, "%u subscribers still on another sender pool; keeping it", active);
      return {st.sharding, current};
    }
  }
  Sharding sharding;
  sharding.pool = pool;
  sharding.lanes = std::make_shared<Lanes>();
  for (unsigned i = 0; i < pool->size(); ++i) sharding.lanes->push_back(std::make_unique<Lane>());
  st.sharding = sharding;
  return {sharding, pool};
}

}  // namespace

SubscriberId fanout_subscribe(WbFanout *fanout, const Rewrite &rewrite) {
  auto sub = add_subscriber(fanout, rewrite, nullptr);
  GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT ": pt %u ssrc %u", sub->id, rewrite.payload_type,
                   rewrite.ssrc);
  return sub->id;
}

SubscriberId fanout_subscribe_pad(WbFanout *fanout, const Rewrite &rewrite, GstPad *peer, GstCaps *caps) {
  FanoutState &st = *fanout->state;
  unsigned n;
  GstSegment segment;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    n = st.next_pad++;
    segment = st.segment;
  }
  gchar *name = g_strdup_printf("src_%u", n);
  GstPad *pad = gst_pad_new_from_static_template(&src_template, name);
  g_free(name);
  gst_pad_set_event_function(pad, src_event);
  gst_pad_set_query_function(pad, src_query);
  gst_pad_set_active(pad, TRUE);
  gst_element_add_pad(GST_ELEMENT(fanout), pad);
  if (GST_PAD_LINK_FAILED(gst_pad_link(pad, peer))) {
    GST_WARNING_OBJECT(fanout, "could not link a subscriber's pad to %" GST_PTR_FORMAT, peer);
    gst_pad_set_active(pad, FALSE);
    gst_element_remove_pad(GST_ELEMENT(fanout), pad);
    return 0;
  }
  gchar *stream_id = gst_pad_create_stream_id_printf(pad, GST_ELEMENT(fanout), "%u", n);
  gst_pad_push_event(pad, gst_event_new_stream_start(stream_id));
  g_free(stream_id);
  gst_pad_push_event(pad, gst_event_new_caps(caps));
  gst_pad_push_event(pad, gst_event_new_segment(&segment));

  auto sub = add_subscriber(fanout, rewrite, GST_PAD(gst_object_ref(pad)));
  GST_INFO_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT " on pad %s: pt %u ssrc %u caps %" GST_PTR_FORMAT, sub->id,
                  GST_PAD_NAME(pad), rewrite.payload_type, rewrite.ssrc, caps);
  return sub->id;
}

void fanout_start(WbFanout *fanout, SubscriberId id, std::unique_ptr<SrtpSender> direct,
                  const std::shared_ptr<SenderPool> &pool) {
  auto sub = find(fanout, id);
  if (!sub || sub->started.load() || sub->shard >= 0) return;
  if (!sub->pad && (!direct || !pool)) {
    GST_WARNING_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT " has no pad, and no sender or sender pool", id);
    return;
  }
  const bool video = codec_is_video(fanout_get_codec(fanout));
  Core &core = *fanout->state->core;
  sub->direct = std::move(direct);
  sub->started_us = g_get_monotonic_time();
  if (video) {
    sub->counted_waiting.store(true);
    core.waiting.fetch_add(1);
  }
  if (sub->pad) {
    sub->started.store(true, std::memory_order_release);
  } else {
    auto [sharding, senders] = sharding_for(fanout, pool);
    const unsigned shard = senders->assign();
    sub->shard = int(shard);
    sub->pool = senders;
    sub->lanes = sharding.lanes;
    (*sharding.lanes)[shard]->count.fetch_add(1);
    senders->post(shard, [lanes = sharding.lanes, shard, sub] {
      Lane &lane = *(*lanes)[shard];
      sub->lane_index = lane.subscribers.size();
      lane.subscribers.push_back(sub);
      sub->started.store(true, std::memory_order_release);
    });
    GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT " on sender shard %u", id, shard);
  }
  if (video && fanout->state->keyframes.request(KeyframeRequests::Clock::now())) send_keyframe_request(fanout);
}

void fanout_request_keyframe(WbFanout *fanout, SubscriberId from) {
  GST_DEBUG_OBJECT(fanout, "keyframe request from subscriber %" G_GUINT64_FORMAT, from);
  if (fanout->state->keyframes.request(KeyframeRequests::Clock::now(), from)) send_keyframe_request(fanout);
  else GST_LOG_OBJECT(fanout, "coalesced or refused (%" G_GUINT64_FORMAT " refused so far)",
                      fanout->state->keyframes.requests_refused());
}

void fanout_exempt_from_keyframe_backoff(WbFanout *fanout, SubscriberId id) { fanout->state->keyframes.exempt(id); }

void fanout_retransmit(WbFanout *fanout, SubscriberId id, const std::vector<uint16_t> &seqs) {
  auto sub = find(fanout, id);
  // `direct` is set before `started` and never changes after.
  if (!sub || seqs.empty() || !sub->started.load(std::memory_order_acquire) || !sub->direct) return;
  std::lock_guard<std::mutex> lock(sub->nack_lock);
  const size_t room = kMaxPendingNacks - std::min(kMaxPendingNacks, sub->nacked.size());
  if (seqs.size() > room)
    GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT ": %zu NACKs dropped", id, seqs.size() - room);
  sub->nacked.insert(sub->nacked.end(), seqs.begin(), seqs.begin() + std::min(seqs.size(), room));
  sub->has_nacks.store(true, std::memory_order_release);
}

bool fanout_has_keyframe(WbFanout *fanout, SubscriberId id) {
  auto sub = find(fanout, id);
  return sub && sub->has_keyframe.load();
}

int fanout_shard_of(WbFanout *fanout, SubscriberId id) {
  auto sub = find(fanout, id);
  return sub ? sub->shard : -1;
}

void fanout_unsubscribe(WbFanout *fanout, SubscriberId id) {
  FanoutState &st = *fanout->state;
  std::shared_ptr<Subscriber> sub;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    auto it = st.subscribers.find(id);
    if (it == st.subscribers.end()) return;
    sub = std::move(it->second);
    st.subscribers.erase(it);
    st.keyframes.forget(id);
    if (sub->pad) {
      auto list = std::make_shared<SubscriberList>();
      for (const auto &s : *st.with_pads)
        if (s != sub) list->push_back(s);
      st.with_pads = std::move(list);
    }
  }
  if (sub->counted_waiting.exchange(false)) st.core->waiting.fetch_sub(1);
  if (sub->shard >= 0) {
    leave_shard(std::move(sub));
    return;
  }
  if (!sub->pad) return;
  GstPad *pad = sub->pad;
  GstPad *peer = gst_pad_get_peer(pad);
  if (peer) {
    gst_pad_unlink(pad, peer);
    gst_object_unref(peer);
  }
  gst_pad_set_active(pad, FALSE);
  gst_element_remove_pad(GST_ELEMENT(fanout), pad);
}

void fanout_set_keyframe_min_interval(WbFanout *fanout, unsigned milliseconds) {
  fanout->state->keyframes.set_min_interval(std::chrono::milliseconds(milliseconds));
}

void fanout_set_report_time(WbFanout *fanout, ReportTime time) {
  fanout->state->report_time.store(time, std::memory_order_relaxed);
}

FanoutStats fanout_get_stats(WbFanout *fanout) {
  FanoutState &st = *fanout->state;
  FanoutStats stats;
  stats.packets_in = st.packets_in.load();
  stats.bytes_out = st.core->bytes_out.load();
  stats.packets_out = st.core->packets_out.load();
  stats.keyframe_wait = st.core->keyframe_wait.snapshot();
  stats.keyframe_requests_received = st.keyframes.requests_received();
  stats.keyframe_requests_sent = st.keyframes.requests_sent_upstream();
  stats.keyframe_requests_refused = st.keyframes.requests_refused();
  stats.packets_retransmitted = st.core->retransmitted.load();
  stats.nacked_not_kept = st.core->nacked_not_kept.load();
  std::lock_guard<std::mutex> lock(st.lock);
  stats.subscribers = unsigned(st.subscribers.size());
  return stats;
}

}  // namespace wb
