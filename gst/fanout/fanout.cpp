#include "fanout.h"

#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video-event.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <tuple>
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
using wb::kMaxLayers;
using wb::SubscriberId;

struct Lane;

// Viewer sequence numbers [first, first + count) were sent from `layer`
// with `rewrite`: what a NACK of one of them is answered with.
struct Span {
  uint16_t first = 0;
  uint32_t count = 0;
  unsigned layer = 0;
  wb::Rewrite rewrite;
};
// Spans kept per subscriber: a NACK older than the last few switches is
// not worth answering (the history is ~3 s anyway).
constexpr size_t kSpansKept = 4;

struct Subscriber {
  Subscriber(SubscriberId i, const wb::Rewrite &r) : id(i), rewrite(r) {}
  ~Subscriber() {
    if (pad) gst_object_unref(pad);
  }
  Subscriber(const Subscriber &) = delete;
  Subscriber &operator=(const Subscriber &) = delete;

  const SubscriberId id;
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
  bool video = false;  // set before `started`: waits count for keyframe requests
  // What its viewer decodes (Unknown: whatever layer 0 carries); it is
  // moved only between the layers in that codec.
  Codec codec = Codec::Unknown;
  // The layer it is sent (-1 before its first keyframe; written by the
  // delivering thread) and the one it was asked for.
  std::atomic<int> layer{-1};
  std::atomic<unsigned> wanted{0};
  // Sent nothing (kPaused); `layer` then is the one it was on, whose
  // numbering the next layer continues.
  std::atomic<bool> paused{false};
  // The layer in whose `waiting` count it is (-1: none); whoever takes it
  // out (its gate opening, its leaving) swaps in -1.
  std::atomic<int> waiting_on{-1};
  gint64 started_us = 0;  // monotonic; set before `started`, for the keyframe wait

  // Sequence numbers the viewer reported lost (NACK, in the viewer's
  // numbering), from its transport's thread, for the delivering thread:
  // only that thread may use the sender's SRTP context.
  std::mutex nack_lock;
  std::vector<uint16_t> nacked;
  std::atomic<bool> has_nacks{false};

  // The delivering thread only.
  wb::Rewrite rewrite;  // payload type and SSRC fixed; offsets change at a switch
  int joining = -1;     // the layer whose keyframe it waits for, on its shard
  // Off its shard's lists for good. A join or a move posted by another
  // thread just before the leave can still run after it; it must not put
  // the subscriber back (its sender would go on sending to a viewer gone).
  bool left = false;
  size_t on_index = 0, joining_index = 0;  // its places in its lane's lists
  uint16_t last_viewer_seq = 0;
  std::vector<Span> spans;  // oldest first; the last is open (count grows)
  gint64 budget_start_us = 0;
  uint64_t budget_used = 0;  // bytes
  gint64 shown_to_pad_us = 0;  // see deliver_to()

  // Padding that probes the viewer's link (see pad()), on its RTX stream:
  // fixed before `started` (ssrc 0: none); the rate from any thread; the
  // rest the delivering thread's.
  uint8_t padding_pt = 0;
  uint32_t padding_ssrc = 0;
  std::atomic<uint64_t> probe_bps{0};
  std::atomic<uint64_t> probe_full_bps{0};  // its share of Core::probing_bps
  uint16_t padding_seq = 0;
  gint64 padded_at_us = 0;  // 0: not padding
  double padding_owed = 0;  // bytes
};

// The longest stretch one delivery pads for: a stream that stalled must
// not be followed by a burst.
constexpr gint64 kMaxPaddedGapUs = 100 * 1000;
// Padding costs the senders what the media it stands for would: probes of
// many links at once (every viewer of a restarted node starts low and
// climbs) overloaded a 2-core server at 200 viewers (docs/layer-groups.md).
// So all probes together stay under this share of the media sent, or the
// floor, whichever is more: a small audience probes freely. And none
// starts while a sender shard is behind by more than kProbeBacklog media
// batches (by the arithmetic, ~60 ms of three 30 fps layers and 50 audio
// batches a second): a server near its limit
// (200 viewers of 2.5 Mbit/s, 800 and 150 kbit/s layers, on 2 cores) still
// dropped batches with the share alone.
constexpr double kPaddingShare = 0.5;
constexpr uint64_t kPaddingFloorBps = 20000000;
constexpr size_t kProbeBacklog = 8;
// How long a new layer flows before its first, partial measure.
constexpr gint64 kFirstPeakUs = 250 * 1000;
// What one padding packet takes of the rate asked, which is in the layers'
// terms (RTP bytes of ~1,200-byte packets, whose IPv4/UDP headers and SRTP
// tag add ~4 % on the link): its RTP bytes plus the 44 of those a packet
// so small adds beyond that, so that padding loads a link as the layer it
// stands for would. Counted as RTP bytes, generated viewers on 1 Mbit/s
// links failed every probe of a layer that fitted.
constexpr double kPaddingCost = double(wb::SrtpSender::kPaddingPacketSize + 44) / 1.04;

// Retransmissions per subscriber and second at most, in bytes: this share
// of the rate of the layer the subscriber is on now, and at least the
// floor (audio, a paused video). A NACK names up to 17 packets, and a
// viewer on a link thinner than its layer NACKs most of what it is sent:
// answering it all keeps the link full, so the next packets are lost and
// NACKed too. Seen in browser-layers with a fixed 200 packets a second:
// a viewer joining a 1.2 Mbit/s layer over a 500 kbit/s link went on
// losing 80-90 % for 5-7 s after it had moved to the 150 kbit/s layer, its
// retransmissions (of the layer it had left) at the budget all along.
constexpr double kRetransmitShare = 0.5;
constexpr uint64_t kMinRetransmitBytesPerSecond = 8 * 1024;
// NACKed packets a subscriber may have waiting.
constexpr size_t kMaxPendingNacks = 512;

using SubscriberList = std::vector<std::shared_ptr<Subscriber>>;

// One layer's part of what the streaming threads and the shards share.
struct LayerCore {
  // Written by the layer's streaming thread per batch; read at NACKs by
  // whichever thread delivers the viewer.
  std::mutex history_lock;
  wb::PacketHistory history;
  // Started subscribers waiting for a keyframe of this layer (to start or
  // to switch): while any are, its streaming thread repeats the request.
  std::atomic<int> waiting{0};
  // The layer's RTP time at running time 0: two layers' difference maps an
  // instant from one's clock to the other's at a switch. Streaming thread.
  std::atomic<uint32_t> rtp_at_zero{0};
  std::atomic<bool> has_rtp_at_zero{false};
};

// What the streaming threads and the shards share: it outlives the element
// while a shard still has a batch of it.
struct Core {
  std::string name;  // the element's, for logs
  // Created with the layer's sink pad, before any batch of it; never freed
  // before the core.
  std::array<std::unique_ptr<LayerCore>, kMaxLayers> layers;
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> packets_out{0};  // retransmissions not included
  // From a video subscriber's start to the keyframe its delivery starts with.
  wb::Histogram keyframe_wait{wb::buckets::kKeyframeWaitSeconds};
  std::atomic<uint64_t> retransmitted{0};
  std::atomic<uint64_t> nacked_not_kept{0};
  std::atomic<uint64_t> switches{0};
  std::atomic<uint64_t> padding_out{0};  // bytes, probing viewers' links
  // The probes under way, each at the full rate its padding rises to.
  std::atomic<uint64_t> probing_bps{0};
  // Each layer's bits/s as its streaming thread last measured them (0: no
  // sink pad): for the layer choice, NACK budgets and stats, without a lock.
  std::array<std::atomic<uint64_t>, kMaxLayers> bitrates{};
  // ... and the highest of its last kPeakSeconds measures: what a new
  // viewer's link must carry (one second's swings, a keyframe's or an
  // encoder's first seconds', are not its rate).
  std::array<std::atomic<uint64_t>, kMaxLayers> peak_bitrates{};
};

// One shard's subscribers of this stream, per layer: those it sends, and
// those waiting for the layer's keyframe (to start, or to switch to it).
// The lists are touched only by the shard's thread (joins, leaves and
// switches arrive as jobs); the counts are read by the streaming threads.
struct alignas(64) Lane {
  std::array<SubscriberList, kMaxLayers> on;
  std::array<SubscriberList, kMaxLayers> joining;
  std::array<std::atomic<unsigned>, kMaxLayers> count{};  // on + joining
  unsigned total() const {
    unsigned n = 0;
    for (const auto &c : count) n += c.load();
    return n;
  }
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

// One batch of one layer of the shared stream, inspected once, read by
// every shard.
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
  size_t first_keyframe = 0;  // index of the first packet starting one, or size()
  unsigned layer = 0;
  bool video = false;
};

// One sink pad's input.
struct LayerInput {
  GstPad *sinkpad = nullptr;  // owned by the element
  GstCaps *caps = nullptr;
  Codec codec = Codec::Unknown;  // fixed by its first caps
  unsigned clock_rate = 0;
  GstSegment segment;
  KeyframeRequests keyframes;
  std::atomic<uint64_t> packets_in{0};
  // The streaming thread's measure of the layer's bitrate (Core::bitrates).
  gint64 rate_start_us = 0;
  uint64_t rate_bytes = 0;
  std::array<uint64_t, wb::kPeakSeconds> recent_rates{};
  unsigned next_recent = 0;
};

struct FanoutState {
  std::mutex lock;
  std::unordered_map<SubscriberId, std::shared_ptr<Subscriber>> subscribers;
  // Copy-on-write: the subscribers with a pad, which layer 0's streaming
  // thread delivers without holding the lock while they come and go.
  std::shared_ptr<const SubscriberList> with_pads = std::make_shared<SubscriberList>();
  Sharding sharding;  // set at the first subscriber started on a shard
  std::array<std::unique_ptr<LayerInput>, kMaxLayers> inputs;  // created with their pads
  // Each input's codec, for readers without the lock. A viewer decodes one
  // video codec: it moves only between the layers in the codec it joined in.
  std::array<std::atomic<Codec>, kMaxLayers> codecs{};
  SubscriberId next_id = 1;
  unsigned next_pad = 0;
  std::atomic<wb::ReportTime> report_time{wb::ReportTime::Capture};
  std::shared_ptr<wb::CaptureDelays> delays;  // the broadcast's, under `lock`
  int64_t logged_audio_lag_us = 0;            // the streaming thread's
  std::atomic<uint64_t> start_bitrate{0};
  std::shared_ptr<Core> core = std::make_shared<Core>();
};

}  // namespace

struct _WbFanout {
  GstElement parent;
  FanoutState *state;
};

G_DEFINE_TYPE(WbFanout, wb_fanout, GST_TYPE_ELEMENT)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-rtp"));
static GstStaticPadTemplate layer_template =
    GST_STATIC_PAD_TEMPLATE("sink_%u", GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS("application/x-rtp"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src_%u", GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS("application/x-rtp"));

namespace {

std::shared_ptr<Subscriber> find(WbFanout *self, SubscriberId id) {
  std::lock_guard<std::mutex> lock(self->state->lock);
  auto it = self->state->subscribers.find(id);
  return it == self->state->subscribers.end() ? nullptr : it->second;
}

unsigned layer_of_pad(GstPad *pad) { return GPOINTER_TO_UINT(gst_pad_get_element_private(pad)); }

LayerInput *input_of(WbFanout *self, unsigned layer) {
  std::lock_guard<std::mutex> lock(self->state->lock);
  return layer < kMaxLayers ? self->state->inputs[layer].get() : nullptr;
}

void send_keyframe_request(WbFanout *self, unsigned layer) {
  GstPad *pad = nullptr;
  {
    std::lock_guard<std::mutex> lock(self->state->lock);
    LayerInput *in = layer < kMaxLayers ? self->state->inputs[layer].get() : nullptr;
    if (in && in->sinkpad) pad = GST_PAD(gst_object_ref(in->sinkpad));
  }
  if (!pad) return;
  GST_DEBUG_OBJECT(self, "asking upstream for a keyframe of layer %u", layer);
  gst_pad_push_event(pad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  gst_object_unref(pad);
}

// A keyframe of `layer` is needed for the fan-out itself (a join, a
// switch): coalesced, never backed off.
void request_layer_keyframe(WbFanout *self, unsigned layer) {
  LayerInput *in = input_of(self, layer);
  if (in && in->keyframes.request(KeyframeRequests::Clock::now())) send_keyframe_request(self, layer);
}

uint16_t sequence_of(const wb::RtpPacketRef &packet) {
  return uint16_t(packet.data[2] << 8 | packet.data[3]);
}
uint32_t timestamp_of(const wb::RtpPacketRef &packet) { return GST_READ_UINT32_BE(packet.data + 4); }

void wait_on(Core &core, Subscriber &sub, int layer) {
  core.layers[unsigned(layer)]->waiting.fetch_add(1);
  const int before = sub.waiting_on.exchange(layer);
  if (before >= 0) core.layers[unsigned(before)]->waiting.fetch_sub(1);
}

void stop_waiting(Core &core, Subscriber &sub) {
  const int before = sub.waiting_on.exchange(-1);
  if (before >= 0) core.layers[unsigned(before)]->waiting.fetch_sub(1);
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

// The running time of `buffer` on its layer's segment, or NONE.
GstClockTime running_time_of(WbFanout *self, const LayerInput &in, GstBuffer *buffer) {
  const GstClockTime pts = GST_BUFFER_PTS(buffer);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return GST_CLOCK_TIME_NONE;
  std::lock_guard<std::mutex> lock(self->state->lock);
  return gst_segment_to_running_time(&in.segment, GST_FORMAT_TIME, pts);
}

// When, on the monotonic clock, the first sample of a buffer at `running`
// was taken, seen from now. Audio and video mapped this way keep their
// sync in the viewers' sender reports. `now` when the buffer has no
// timestamp or the element no clock.
gint64 sampled_time_us(WbFanout *self, GstClockTime running, gint64 now) {
  if (!GST_CLOCK_TIME_IS_VALID(running)) return now;
  GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
  if (!clock) return now;
  GstClockTime clock_now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  if (!GST_CLOCK_TIME_IS_VALID(clock_now)) return now;
  GstClockTimeDiff age = GstClockTimeDiff(clock_now) -
                         GstClockTimeDiff(running + gst_element_get_base_time(GST_ELEMENT(self)));
  return now - age / GstClockTimeDiff(GST_USECOND);
}

// The instant the viewers' sender reports give to the RTP time of a batch
// of `layer` at `running` that arrives `now` (see ReportTime).
gint64 report_time_us(WbFanout *self, wb::CaptureDelays *delays, unsigned layer, GstClockTime running, bool video,
                      gint64 now) {
  const wb::ReportTime mode = self->state->report_time.load(std::memory_order_relaxed);
  if (mode == wb::ReportTime::Send) return now;
  const gint64 captured = sampled_time_us(self, running, now);
  if (!delays || !GST_CLOCK_TIME_IS_VALID(running)) return captured;
  using Medium = wb::CaptureDelays::Medium;
  // Layer 0's alone, from its one streaming thread: the best layer (put
  // first), whose encoder is the slowest, so no layer's picture is later.
  if (layer == 0) delays->note(video ? Medium::Video : Medium::Audio, captured, now);
  if (mode != wb::ReportTime::PictureFirst || video) return captured;
  const int64_t lag = delays->audio_lag_us();
  if (std::abs(lag - self->state->logged_audio_lag_us) >= 1000) {
    GST_INFO_OBJECT(self, "audio reaches us %.1f ms later after capture than video (video %.1f ms, audio %.1f ms): "
                    "reported that much later", double(lag) / 1000,
                    double(delays->delay_us(Medium::Video)) / 1000, double(delays->delay_us(Medium::Audio)) / 1000);
    self->state->logged_audio_lag_us = lag;
  }
  return captured + lag;
}

// Answers a subscriber's NACKs from the history of the layer that sent
// each packet, with the rewrite it was sent with. Returns the bytes
// queued. The delivering thread.
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
  const int on = sub.layer.load(std::memory_order_relaxed);
  const uint64_t budget =
      std::max(kMinRetransmitBytesPerSecond,
               on >= 0 ? uint64_t(double(core.bitrates[unsigned(on)].load(std::memory_order_relaxed)) / 8 *
                                  kRetransmitShare)
                       : 0);
  // Copied out under the lock: the streaming thread overwrites the history.
  std::vector<std::vector<uint8_t>> copies;
  std::vector<wb::RtpPacketRef> found;
  std::vector<const Span *> sent_in;
  uint64_t not_kept = 0, over_budget = 0;
  for (uint16_t viewer_seq : seqs) {
    // Only what this subscriber was sent: not what came before its
    // keyframe, nor another layer's packets.
    const Span *span = nullptr;
    for (auto it = sub.spans.rbegin(); it != sub.spans.rend() && !span; ++it)
      if (uint16_t(viewer_seq - it->first) < it->count) span = &*it;
    if (!span) continue;
    LayerCore &layer = *core.layers[span->layer];
    std::lock_guard<std::mutex> lock(layer.history_lock);
    const wb::RtpPacketRef *packet = layer.history.find(uint16_t(viewer_seq - span->rewrite.seq_offset));
    if (!packet) {
      ++not_kept;
    } else if (sub.budget_used + packet->size > budget) {
      ++over_budget;
    } else {
      sub.budget_used += packet->size;
      copies.emplace_back(packet->data, packet->data + packet->size);
      found.push_back(*packet);
      sent_in.push_back(span);
    }
  }
  if (not_kept || over_budget)
    GST_DEBUG("%s: subscriber %" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT " NACKed packets no longer kept, %"
              G_GUINT64_FORMAT " over the retransmission budget", core.name.c_str(), sub.id, not_kept, over_budget);
  core.nacked_not_kept += not_kept;
  core.retransmitted += found.size();
  if (found.empty()) return 0;
  GST_LOG("%s: subscriber %" G_GUINT64_FORMAT ": retransmitting %zu packets", core.name.c_str(), sub.id,
          found.size());
  uint64_t bytes = 0;
  for (size_t i = 0; i < found.size();) {
    found[i].data = copies[i].data();
    size_t end = i + 1;
    for (; end < found.size() && sent_in[end] == sent_in[i]; ++end) found[end].data = copies[end].data();
    bytes += sub.direct->send(found.data() + i, end - i, sent_in[i]->rewrite, out);
    i = end;
  }
  return bytes;
}

// The subscriber's delivery starts, or moves, at packet `k` of `batch` (a
// keyframe of the batch's layer): from a switch on, its sequence numbers
// run on from the last it was sent, and its timestamps map the same
// instant on the new layer's clock. The delivering thread.
void enter_layer(Core &core, Subscriber &sub, const Batch &batch, size_t k, gint64 now) {
  const unsigned to = batch.layer;
  const wb::RtpPacketRef &first = batch.refs[k];
  const int from = sub.layer.load(std::memory_order_relaxed);
  if (from >= 0) {
    sub.rewrite.seq_offset = uint16_t(sub.last_viewer_seq + 1 - sequence_of(first));
    const LayerCore &a = *core.layers[unsigned(from)], &b = *core.layers[to];
    if (a.has_rtp_at_zero.load() && b.has_rtp_at_zero.load())
      sub.rewrite.ts_offset += a.rtp_at_zero.load() - b.rtp_at_zero.load();
    core.switches.fetch_add(1, std::memory_order_relaxed);
    GST_DEBUG("%s: subscriber %" G_GUINT64_FORMAT ": layer %d -> %u at its keyframe, viewer seq %u",
              core.name.c_str(), sub.id, from, to, unsigned(uint16_t(sub.last_viewer_seq + 1)));
  } else {
    GST_DEBUG("%s: subscriber %" G_GUINT64_FORMAT ": keyframe of layer %u, starting delivery", core.name.c_str(),
              sub.id, to);
    if (sub.waiting_on.load() >= 0) core.keyframe_wait.observe(double(now - sub.started_us) / G_USEC_PER_SEC);
  }
  stop_waiting(core, sub);
  sub.spans.push_back({uint16_t(sequence_of(first) + sub.rewrite.seq_offset), 0, to, sub.rewrite});
  if (sub.spans.size() > kSpansKept) sub.spans.erase(sub.spans.begin());
  sub.layer.store(int(to), std::memory_order_relaxed);
  sub.paused.store(false);
  sub.has_keyframe.store(true, std::memory_order_relaxed);
}

// A probing subscriber's padding for the time since its last delivery, at
// its probe rate, after its media: it leaves paced by the stream's own
// frames, as one more stream the viewer's estimate counts. The delivering
// thread.
uint64_t pad(Core &core, Subscriber &sub, const Batch &batch, wb::SendBatch &out, gint64 now) {
  const uint64_t rate = sub.probe_bps.load(std::memory_order_relaxed);
  if (!rate) {
    sub.padded_at_us = 0;
    sub.padding_owed = 0;
    return 0;
  }
  if (sub.padded_at_us)
    sub.padding_owed += double(rate) / 8 * double(std::min(now - sub.padded_at_us, kMaxPaddedGapUs)) / G_USEC_PER_SEC;
  sub.padded_at_us = now;
  const uint8_t abs_send_time = sub.rewrite.abs_send_time_id;
  const double cost = kPaddingCost + (abs_send_time ? double(wb::kAbsSendTimeBlock) / 1.04 : 0);
  const size_t packets = size_t(sub.padding_owed / cost);
  if (!packets) return 0;
  sub.padding_owed -= double(packets) * cost;
  const uint32_t rtp_time = timestamp_of(batch.refs.back()) + sub.rewrite.ts_offset;
  const uint64_t bytes = sub.direct->send_padding(sub.padding_pt, sub.padding_ssrc, &sub.padding_seq, rtp_time,
                                                  packets, abs_send_time, out);
  core.padding_out.fetch_add(bytes, std::memory_order_relaxed);
  return bytes;
}

// Everything one subscriber does with one batch from packet `first` on:
// NACK answers, rewrite, send. Returns the bytes sent and adds the packets
// to `packets`. The delivering thread.
uint64_t deliver_to(Core &core, Subscriber &sub, const Batch &batch, size_t first, wb::SendBatch &out, gint64 now,
                    uint64_t &packets) {
  const size_t n = batch.refs.size();
  uint64_t bytes = 0;
  // Before the new packets, so these stay the last the sender counted.
  if (sub.has_nacks.load(std::memory_order_acquire) && sub.direct) bytes += retransmit(core, sub, out, now);
  sub.last_viewer_seq = uint16_t(sequence_of(batch.refs[n - 1]) + sub.rewrite.seq_offset);
  if (!sub.spans.empty()) sub.spans.back().count = uint32_t(uint16_t(sub.last_viewer_seq - sub.spans.back().first)) + 1;
  packets += n - first;
  if (sub.direct) {
    bytes += sub.direct->send(batch.refs.data() + first, n - first, sub.rewrite, out);
    if (sub.padding_ssrc) bytes += pad(core, sub, batch, out, now);
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

void list_add(SubscriberList &list, const std::shared_ptr<Subscriber> &sub, size_t Subscriber::*index) {
  (*sub).*index = list.size();
  list.push_back(sub);
}

void list_remove(SubscriberList &list, const std::shared_ptr<Subscriber> &sub, size_t Subscriber::*index) {
  const size_t at = (*sub).*index;
  if (at >= list.size() || list[at] != sub) return;
  if (at + 1 != list.size()) {
    list[at] = std::move(list.back());
    (*list[at]).*index = at;
  }
  list.pop_back();
}

// On the subscriber's shard: it waits for a keyframe of `to` (to start
// there, or to move there), unless it is on `to` already. The caller
// counted it in `to`'s count before posting this (so that the streaming
// thread posts the next batch of `to` to the shard): that count stays
// while it waits or once it is on `to`, else it is taken back here.
void join_layer(Core &core, Lane &lane, const std::shared_ptr<Subscriber> &sub, unsigned to) {
  if (sub->left) {
    lane.count[to].fetch_sub(1);
    return;
  }
  const bool on_it = !sub->paused.load(std::memory_order_relaxed) && sub->layer.load(std::memory_order_relaxed) == int(to);
  if (sub->joining == int(to) || on_it) {
    lane.count[to].fetch_sub(1);
    if (sub->joining >= 0 && sub->joining != int(to)) {
      list_remove(lane.joining[unsigned(sub->joining)], sub, &Subscriber::joining_index);
      lane.count[unsigned(sub->joining)].fetch_sub(1);
      sub->joining = -1;
      stop_waiting(core, *sub);
    }
    return;
  }
  if (sub->joining >= 0) {
    list_remove(lane.joining[unsigned(sub->joining)], sub, &Subscriber::joining_index);
    lane.count[unsigned(sub->joining)].fetch_sub(1);
  }
  list_add(lane.joining[to], sub, &Subscriber::joining_index);
  sub->joining = int(to);
  if (sub->video) wait_on(core, *sub, int(to));
}

// On the subscriber's shard: it is sent nothing more until it joins a layer
// again.
void pause(Core &core, Lane &lane, const std::shared_ptr<Subscriber> &sub) {
  if (sub->left) return;
  if (sub->joining >= 0) {
    list_remove(lane.joining[unsigned(sub->joining)], sub, &Subscriber::joining_index);
    lane.count[unsigned(sub->joining)].fetch_sub(1);
    sub->joining = -1;
    stop_waiting(core, *sub);
  }
  const int layer = sub->layer.load(std::memory_order_relaxed);
  if (layer < 0 || sub->paused.load(std::memory_order_relaxed)) return;
  list_remove(lane.on[unsigned(layer)], sub, &Subscriber::on_index);
  lane.count[unsigned(layer)].fetch_sub(1);
  sub->paused.store(true);
  GST_DEBUG("%s: subscriber %" G_GUINT64_FORMAT ": paused on layer %d", core.name.c_str(), sub->id, layer);
}

// A shard's job for one batch: its own subscribers of the batch's layer,
// then those waiting for this layer's keyframe if the batch has one.
void deliver_on_shard(Core &core, Lane &lane, const Batch &batch) {
  wb::SendBatch &out = wb::SendBatch::for_this_thread();
  const gint64 now = g_get_monotonic_time();
  const unsigned layer = batch.layer;
  uint64_t bytes = 0, packets = 0;
  for (const auto &sub : lane.on[layer]) bytes += deliver_to(core, *sub, batch, 0, out, now, packets);
  if (!lane.joining[layer].empty() && batch.first_keyframe < batch.refs.size()) {
    SubscriberList ready;
    ready.swap(lane.joining[layer]);
    for (const auto &sub : ready) {
      const int from = sub->layer.load(std::memory_order_relaxed);
      if (from >= 0 && !sub->paused.load(std::memory_order_relaxed)) {
        list_remove(lane.on[unsigned(from)], sub, &Subscriber::on_index);
        lane.count[unsigned(from)].fetch_sub(1);
      }
      sub->joining = -1;
      enter_layer(core, *sub, batch, batch.first_keyframe, now);
      list_add(lane.on[layer], sub, &Subscriber::on_index);
      bytes += deliver_to(core, *sub, batch, batch.first_keyframe, out, now, packets);
    }
  }
  out.flush();
  core.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
  core.packets_out.fetch_add(packets, std::memory_order_relaxed);
}

// Takes `sub` off its shard, after the batches already queued for it; it
// (its sender and SRTP context) is freed on the shard's thread.
void leave_shard(const std::shared_ptr<Core> &core, std::shared_ptr<Subscriber> sub) {
  const unsigned shard = unsigned(sub->shard);
  std::shared_ptr<Lanes> lanes = sub->lanes.lock();
  if (!lanes) return;
  // Without its pool (closed), the subscriber stays in its lane until the
  // lanes go, with the fan-out's next pool or the fan-out itself.
  std::shared_ptr<wb::SenderPool> pool = sub->pool.lock();
  if (!pool) return;
  pool->post(shard, [core, lanes, shard, sub = std::move(sub)]() mutable {
    Lane &lane = *(*lanes)[shard];
    sub->left = true;
    // Its join may have run after fanout_unsubscribe() took it out of the
    // waiting count: a count left behind would ask for keyframes forever.
    stop_waiting(*core, *sub);
    if (sub->joining >= 0) {
      list_remove(lane.joining[unsigned(sub->joining)], sub, &Subscriber::joining_index);
      lane.count[unsigned(sub->joining)].fetch_sub(1);
    }
    const int layer = sub->layer.load(std::memory_order_relaxed);
    if (layer >= 0 && !sub->paused.load(std::memory_order_relaxed)) {
      list_remove(lane.on[unsigned(layer)], sub, &Subscriber::on_index);
      lane.count[unsigned(layer)].fetch_sub(1);
    }
    sub.reset();
  });
  pool->release(shard);
}

// Takes ownership of `buffers`, which arrived on `layer`'s sink pad.
void deliver(WbFanout *self, unsigned layer, std::vector<GstBuffer *> buffers) {
  FanoutState &st = *self->state;
  std::shared_ptr<const SubscriberList> with_pads;
  std::shared_ptr<wb::CaptureDelays> delays;
  Sharding sharding;
  Codec codec;
  LayerInput *in;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    with_pads = st.with_pads;
    delays = st.delays;
    sharding = st.sharding;
    in = st.inputs[layer].get();
    codec = in->codec;
  }
  Core &core = *st.core;
  LayerCore &layer_core = *core.layers[layer];

  // Inspect and map every packet once, for every subscriber.
  auto batch = std::make_shared<Batch>();
  batch->video = wb::codec_is_video(codec);
  batch->layer = layer;
  const gint64 now = g_get_monotonic_time();
  const GstClockTime running = buffers.empty() ? GST_CLOCK_TIME_NONE : running_time_of(self, *in, buffers.front());
  const uint32_t abs_send_time = wb::abs_send_time_of(now);
  const gint64 sampled_us = report_time_us(self, delays.get(), layer, running, batch->video, now);
  bool any_keyframe = false;
  uint64_t bytes_in = 0;
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
    if (keyframe && !any_keyframe) batch->first_keyframe = batch->refs.size();
    any_keyframe |= keyframe;
    batch->buffers.push_back(buffer);
    batch->maps.push_back(map);
    batch->refs.push_back({map.data, map.size, header_len, sampled_us, abs_send_time});
    bytes_in += map.size;
  }
  if (!any_keyframe) batch->first_keyframe = batch->refs.size();
  in->packets_in += buffers.size();
  if (now - in->rate_start_us >= G_USEC_PER_SEC) {
    if (in->rate_start_us) {
      const uint64_t rate = in->rate_bytes * 8 * G_USEC_PER_SEC / uint64_t(now - in->rate_start_us);
      core.bitrates[layer].store(in->sinkpad ? rate : 0, std::memory_order_relaxed);
      in->recent_rates[in->next_recent++ % wb::kPeakSeconds] = rate;
      const uint64_t peak = *std::max_element(in->recent_rates.begin(), in->recent_rates.end());
      core.peak_bitrates[layer].store(in->sinkpad ? peak : 0, std::memory_order_relaxed);
    }
    in->rate_start_us = now;
    in->rate_bytes = 0;
  }
  in->rate_bytes += bytes_in;
  // Until its first second is measured, a layer's peak is what it carried
  // so far (its first keyframe included): viewers who join a broadcast's
  // first second (all of them, when a node restarts and its players come
  // back) start by it, not blind on the first layer.
  if (!in->next_recent && in->rate_start_us && now - in->rate_start_us >= kFirstPeakUs)
    core.peak_bitrates[layer].store(
        in->sinkpad ? in->rate_bytes * 8 * G_USEC_PER_SEC / uint64_t(now - in->rate_start_us) : 0,
        std::memory_order_relaxed);
  if (any_keyframe && batch->video) in->keyframes.keyframe_sent();
  if (!batch->refs.empty()) {
    if (GST_CLOCK_TIME_IS_VALID(running) && in->clock_rate) {
      layer_core.rtp_at_zero.store(timestamp_of(batch->refs.front()) -
                                   uint32_t(gst_util_uint64_scale(running, in->clock_rate, GST_SECOND)));
      layer_core.has_rtp_at_zero.store(true);
    }
    {
      std::lock_guard<std::mutex> lock(layer_core.history_lock);
      for (const auto &ref : batch->refs) layer_core.history.record(ref);
    }
    // Each shard with subscribers of this layer gets the batch once.
    if (std::shared_ptr<wb::SenderPool> pool = sharding.pool.lock())
      for (unsigned i = 0; i < sharding.lanes->size(); ++i) {
        if (!(*sharding.lanes)[i]->count[layer].load(std::memory_order_relaxed)) continue;
        pool->post(i, [core = st.core, lanes = sharding.lanes, i, batch] {
          deliver_on_shard(*core, *(*lanes)[i], *batch);
        }, true);
      }
    // Subscribers with a pad stay on layer 0.
    if (layer == 0) {
      wb::SendBatch &out = wb::SendBatch::for_this_thread();
      uint64_t bytes = 0, packets = 0;
      for (const auto &sub : *with_pads) {
        if (!sub->started.load(std::memory_order_acquire)) continue;
        size_t first = 0;
        if (!sub->has_keyframe.load(std::memory_order_relaxed)) {
          first = batch->first_keyframe;
          if (first == batch->refs.size()) continue;
          enter_layer(core, *sub, *batch, first, now);
        }
        bytes += deliver_to(core, *sub, *batch, first, out, now, packets);
      }
      out.flush();
      core.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
      core.packets_out.fetch_add(packets, std::memory_order_relaxed);
    }
  }
  if (batch->video && in->keyframes.due(KeyframeRequests::Clock::now(), layer_core.waiting.load() > 0))
    send_keyframe_request(self, layer);
}

GstFlowReturn sink_chain(GstPad *pad, GstObject *parent, GstBuffer *buffer) {
  deliver(WB_FANOUT(parent), layer_of_pad(pad), {buffer});
  return GST_FLOW_OK;
}

GstFlowReturn sink_chain_list(GstPad *pad, GstObject *parent, GstBufferList *list) {
  guint n = gst_buffer_list_length(list);
  std::vector<GstBuffer *> buffers(n);
  for (guint i = 0; i < n; ++i) buffers[i] = gst_buffer_ref(gst_buffer_list_get(list, i));
  gst_buffer_list_unref(list);
  deliver(WB_FANOUT(parent), layer_of_pad(pad), std::move(buffers));
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

gboolean sink_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  WbFanout *self = WB_FANOUT(parent);
  FanoutState &st = *self->state;
  const unsigned layer = layer_of_pad(pad);
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      const GstStructure *s = gst_caps_get_structure(caps, 0);
      const gchar *name = gst_structure_get_string(s, "encoding-name");
      Codec codec = wb::codec_from_encoding_name(name ? name : "");
      gint clock_rate = 0;
      gst_structure_get_int(s, "clock-rate", &clock_rate);
      GST_INFO_OBJECT(self, "layer %u: stream caps %" GST_PTR_FORMAT, layer, caps);
      bool accepted = codec != Codec::Unknown;
      {
        std::lock_guard<std::mutex> lock(st.lock);
        LayerInput &in = *st.inputs[layer];
        // Its viewers were answered with this codec's payload type.
        if (in.codec != Codec::Unknown && codec != in.codec) accepted = false;
        if (accepted) {
          gst_caps_replace(&in.caps, caps);
          in.clock_rate = unsigned(std::max(clock_rate, 0));
          in.codec = codec;
          st.codecs[layer].store(codec);
        }
      }
      if (!accepted && codec != Codec::Unknown)
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("A layer cannot change its codec"),
                          ("layer %u: %" GST_PTR_FORMAT, layer, caps));
      gst_event_unref(event);
      // Each pad announces the caps its own transport negotiated.
      return accepted;
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
      break;
    case GST_EVENT_SEGMENT: {
      std::lock_guard<std::mutex> lock(st.lock);
      gst_event_copy_segment(event, &st.inputs[layer]->segment);
      break;
    }
    default:
      break;
  }
  // Pads carry layer 0 only, and its events.
  if (layer == 0) push_to_pads(self, event);
  else gst_event_unref(event);
  return TRUE;
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
    LayerInput *in = input_of(self, 0);
    if (in->keyframes.request(KeyframeRequests::Clock::now(), from)) send_keyframe_request(self, 0);
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
      return gst_pad_peer_query(input_of(self, 0)->sinkpad, query);
    default:
      return FALSE;
  }
}

// A sink pad for `layer`, with its input and its part of the core.
GstPad *add_layer(WbFanout *self, GstStaticPadTemplate *templ, unsigned layer, const gchar *name) {
  FanoutState &st = *self->state;
  GstPad *pad = gst_pad_new_from_static_template(templ, name);
  gst_pad_set_element_private(pad, GUINT_TO_POINTER(layer));
  gst_pad_set_chain_function(pad, sink_chain);
  gst_pad_set_chain_list_function(pad, sink_chain_list);
  gst_pad_set_event_function(pad, sink_event);
  gst_pad_set_query_function(pad, sink_query);
  {
    std::lock_guard<std::mutex> lock(st.lock);
    if (!st.core->layers[layer]) st.core->layers[layer] = std::make_unique<LayerCore>();
    auto in = std::make_unique<LayerInput>();
    in->sinkpad = pad;
    gst_segment_init(&in->segment, GST_FORMAT_TIME);
    if (st.inputs[0]) in->keyframes.set_min_interval(st.inputs[0]->keyframes.min_interval());
    st.inputs[layer] = std::move(in);
  }
  gst_element_add_pad(GST_ELEMENT(self), pad);
  return pad;
}

GstPad *request_new_pad(GstElement *element, GstPadTemplate *, const gchar *name, const GstCaps *) {
  WbFanout *self = WB_FANOUT(element);
  unsigned layer = 0;
  if (name && sscanf(name, "sink_%u", &layer) != 1) return nullptr;
  {
    std::lock_guard<std::mutex> lock(self->state->lock);
    if (!name)
      for (layer = 1; layer < kMaxLayers && self->state->inputs[layer]; ++layer) {
      }
    if (layer == 0 || layer >= kMaxLayers || self->state->inputs[layer]) {
      GST_WARNING_OBJECT(self, "no layer %u: layers are 1 to %u, each once", layer, kMaxLayers - 1);
      return nullptr;
    }
  }
  gchar *pad_name = g_strdup_printf("sink_%u", layer);
  GstPad *pad = add_layer(self, &layer_template, layer, pad_name);
  g_free(pad_name);
  return pad;
}

// The layer's input stays (subscribers may still be on it); it gets no more.
void release_pad(GstElement *element, GstPad *pad) {
  WbFanout *self = WB_FANOUT(element);
  {
    std::lock_guard<std::mutex> lock(self->state->lock);
    LayerInput *in = self->state->inputs[layer_of_pad(pad)].get();
    if (in && in->sinkpad == pad) in->sinkpad = nullptr;
    self->state->core->bitrates[layer_of_pad(pad)].store(0);
    self->state->core->peak_bitrates[layer_of_pad(pad)].store(0);
  }
  gst_pad_set_active(pad, FALSE);
  gst_element_remove_pad(element, pad);
}

}  // namespace

static void wb_fanout_finalize(GObject *object) {
  WbFanout *self = WB_FANOUT(object);
  // Subscribers nobody unsubscribed still sit in their shards' lanes.
  for (auto &entry : self->state->subscribers)
    if (entry.second->shard >= 0) leave_shard(self->state->core, std::move(entry.second));
  for (auto &in : self->state->inputs)
    if (in && in->caps) gst_caps_unref(in->caps);
  delete self->state;
  G_OBJECT_CLASS(wb_fanout_parent_class)->finalize(object);
}

static void wb_fanout_class_init(WbFanoutClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->finalize = wb_fanout_finalize;
  element_class->request_new_pad = request_new_pad;
  element_class->release_pad = release_pad;
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &layer_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Broadcast fan-out", "Filter/Network/RTP",
      "Shares one RTP stream (in one or more layers) with many viewers (keyframe gate, per-viewer rewrite and "
      "layer, sender shards)",
      "webrtcbroadcast developers");
  GST_DEBUG_CATEGORY_INIT(wb_fanout_debug, "broadcastfanout", 0, "webrtcbroadcast fan-out");
}

static void wb_fanout_init(WbFanout *self) {
  self->state = new FanoutState();
  add_layer(self, &sink_template, 0, "sink");
}

namespace wb {

GstCaps *fanout_get_stream_caps(WbFanout *fanout) {
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  for (const auto &in : fanout->state->inputs)
    if (in && in->caps) return gst_caps_ref(in->caps);
  return nullptr;
}

Codec fanout_get_codec(WbFanout *fanout) {
  for (const auto &codec : fanout->state->codecs)
    if (codec.load() != Codec::Unknown) return codec.load();
  return Codec::Unknown;
}

std::array<Codec, kMaxLayers> fanout_layer_codecs(WbFanout *fanout) {
  std::array<Codec, kMaxLayers> codecs{};
  for (unsigned i = 0; i < kMaxLayers; ++i) codecs[i] = fanout->state->codecs[i].load();
  return codecs;
}

GstCaps *fanout_get_layer_caps(WbFanout *fanout, unsigned layer) {
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  const LayerInput *in = layer < kMaxLayers ? fanout->state->inputs[layer].get() : nullptr;
  return in && in->caps ? gst_caps_ref(in->caps) : nullptr;
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
// settings brings a new pool. With the state's lock held.
std::pair<Sharding, std::shared_ptr<SenderPool>> sharding_for(WbFanout *fanout, const std::shared_ptr<SenderPool> &pool) {
  FanoutState &st = *fanout->state;
  std::shared_ptr<SenderPool> current = st.sharding.pool.lock();
  if (current == pool) return {st.sharding, current};
  if (current) {
    unsigned active = 0;
    for (const auto &lane : *st.sharding.lanes) active += lane->total();
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

SubscriberId fanout_subscribe(WbFanout *fanout, const Rewrite &rewrite, Codec codec) {
  auto sub = add_subscriber(fanout, rewrite, nullptr);
  sub->codec = codec;
  // It starts on the first layer in its codec: the best, as layers come best first.
  const auto codecs = fanout_layer_codecs(fanout);
  for (unsigned i = 0; i < kMaxLayers && codec != Codec::Unknown; ++i)
    if (codecs[i] == codec) {
      sub->wanted.store(i);
      break;
    }
  GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT ": pt %u ssrc %u, %s from layer %u", sub->id,
                   rewrite.payload_type, rewrite.ssrc, codec_encoding_name(codec), sub->wanted.load());
  return sub->id;
}

SubscriberId fanout_subscribe_pad(WbFanout *fanout, const Rewrite &rewrite, GstPad *peer, GstCaps *caps) {
  FanoutState &st = *fanout->state;
  unsigned n;
  GstSegment segment;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    n = st.next_pad++;
    segment = st.inputs[0]->segment;
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
  FanoutState &st = *fanout->state;
  auto sub = find(fanout, id);
  if (!sub || sub->started.load() || sub->shard >= 0) return;
  if (!sub->pad && (!direct || !pool)) {
    GST_WARNING_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT " has no pad, and no sender or sender pool", id);
    return;
  }
  Core &core = *st.core;
  sub->video = codec_is_video(fanout_get_codec(fanout));
  sub->direct = std::move(direct);
  sub->started_us = g_get_monotonic_time();
  if (sub->pad) {
    if (sub->video) wait_on(core, *sub, 0);
    sub->started.store(true, std::memory_order_release);
    if (sub->video) request_layer_keyframe(fanout, 0);
    return;
  }
  unsigned layer, shard;
  Sharding sharding;
  std::shared_ptr<SenderPool> senders;
  {
    // With fanout_set_layer(): the layer asked for last is the one joined.
    std::lock_guard<std::mutex> lock(st.lock);
    std::tie(sharding, senders) = sharding_for(fanout, pool);
    shard = senders->assign();
    sub->shard = int(shard);
    sub->pool = senders;
    sub->lanes = sharding.lanes;
    layer = sub->wanted.load();
    (*sharding.lanes)[shard]->count[layer].fetch_add(1);
  }
  senders->post(shard, [core = st.core, lanes = sharding.lanes, shard, sub, layer] {
    join_layer(*core, *(*lanes)[shard], sub, layer);
    sub->started.store(true, std::memory_order_release);
  });
  GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT " on sender shard %u, layer %u", id, shard, layer);
  if (sub->video) request_layer_keyframe(fanout, layer);
}

unsigned fanout_layer_count(WbFanout *fanout) {
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  unsigned n = 0;
  for (const auto &in : fanout->state->inputs) n += in && in->sinkpad;
  return n;
}

std::array<uint64_t, kMaxLayers> fanout_layer_bitrates(WbFanout *fanout, Codec codec, bool peak) {
  const auto &measured = peak ? fanout->state->core->peak_bitrates : fanout->state->core->bitrates;
  std::array<uint64_t, kMaxLayers> rates{};
  for (unsigned i = 0; i < kMaxLayers; ++i)
    if (codec == Codec::Unknown || fanout->state->codecs[i].load(std::memory_order_relaxed) == codec)
      rates[i] = measured[i].load(std::memory_order_relaxed);
  return rates;
}

bool fanout_set_layer(WbFanout *fanout, SubscriberId id, unsigned layer) {
  FanoutState &st = *fanout->state;
  auto sub = find(fanout, id);
  if (!sub || sub->pad) return false;
  int shard;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    if (layer != kPaused && (layer >= kMaxLayers || !st.inputs[layer] || !st.inputs[layer]->sinkpad)) return false;
    if (layer != kPaused && sub->codec != Codec::Unknown && st.inputs[layer]->codec != sub->codec) return false;
    if (layer == kPaused && sub->shard < 0) return false;  // it starts on a layer
    sub->wanted.store(layer);
    shard = sub->shard;
  }
  if (shard < 0) return true;  // fanout_start() joins it
  std::shared_ptr<SenderPool> pool = sub->pool.lock();
  std::shared_ptr<Lanes> lanes = sub->lanes.lock();
  if (!pool || !lanes) return false;
  if (layer == kPaused) {
    GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT ": pausing", id);
    pool->post(unsigned(shard), [core = st.core, lanes, shard, sub] { pause(*core, *(*lanes)[unsigned(shard)], sub); });
    return true;
  }
  GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT ": to layer %u", id, layer);
  (*lanes)[unsigned(shard)]->count[layer].fetch_add(1);
  pool->post(unsigned(shard), [core = st.core, lanes, shard, sub, layer] {
    join_layer(*core, *(*lanes)[unsigned(shard)], sub, layer);
  });
  if (sub->video) request_layer_keyframe(fanout, layer);
  return true;
}

void fanout_set_padding_stream(WbFanout *fanout, SubscriberId id, uint8_t payload_type, uint32_t ssrc) {
  auto sub = find(fanout, id);
  if (!sub || sub->pad || sub->started.load()) return;
  sub->padding_pt = payload_type;
  sub->padding_ssrc = ssrc;
  sub->padding_seq = uint16_t(g_random_int());
}

bool fanout_set_probe_rate(WbFanout *fanout, SubscriberId id, uint64_t bits_per_second, uint64_t full_bps) {
  FanoutState &st = *fanout->state;
  std::shared_ptr<Subscriber> sub;
  {
    // Under the lock fanout_unsubscribe() takes the subscriber's share back
    // under: none is counted after it left.
    std::lock_guard<std::mutex> lock(st.lock);
    auto it = st.subscribers.find(id);
    if (it == st.subscribers.end() || !it->second->padding_ssrc) return false;
    sub = it->second;
    const uint64_t full = bits_per_second ? std::max(full_bps, bits_per_second) : 0;
    st.core->probing_bps.fetch_add(full - sub->probe_full_bps.exchange(full), std::memory_order_relaxed);  // mod 2^64
  }
  if (sub->probe_bps.exchange(bits_per_second) != bits_per_second)
    GST_DEBUG_OBJECT(fanout, "subscriber %" G_GUINT64_FORMAT ": padding at %" G_GUINT64_FORMAT " bit/s", id,
                     bits_per_second);
  return true;
}

int fanout_layer_of(WbFanout *fanout, SubscriberId id) {
  auto sub = find(fanout, id);
  return sub && !sub->paused.load() ? sub->layer.load() : -1;
}

int fanout_wanted_layer_of(WbFanout *fanout, SubscriberId id) {
  auto sub = find(fanout, id);
  return sub ? int(sub->wanted.load()) : -1;
}

void fanout_request_keyframe(WbFanout *fanout, SubscriberId from) {
  auto sub = find(fanout, from);
  // A paused viewer gets a keyframe with its next layer.
  if (!sub || sub->wanted.load() == kPaused) return;
  const int on = sub->layer.load();
  const unsigned layer = on >= 0 && !sub->paused.load() ? unsigned(on) : sub->wanted.load();
  LayerInput *in = input_of(fanout, layer);
  if (!in) return;
  GST_DEBUG_OBJECT(fanout, "keyframe request from subscriber %" G_GUINT64_FORMAT " for layer %u", from, layer);
  if (in->keyframes.request(KeyframeRequests::Clock::now(), from)) send_keyframe_request(fanout, layer);
  else GST_LOG_OBJECT(fanout, "coalesced or refused (%" G_GUINT64_FORMAT " refused so far)",
                      in->keyframes.requests_refused());
}

void fanout_exempt_from_keyframe_backoff(WbFanout *fanout, SubscriberId id) {
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  for (auto &in : fanout->state->inputs)
    if (in) in->keyframes.exempt(id);
}

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

uint64_t fanout_padding_room(WbFanout *fanout) {
  FanoutState &st = *fanout->state;
  uint64_t sent = 0;  // bits/s of media to the subscribers
  {
    std::lock_guard<std::mutex> lock(st.lock);
    if (auto pool = st.sharding.pool.lock())
      if (pool->backlog() > kProbeBacklog) return 0;
    if (st.sharding.lanes)
      for (unsigned layer = 0; layer < kMaxLayers; ++layer)
        for (const auto &lane : *st.sharding.lanes)
          sent += st.core->bitrates[layer].load(std::memory_order_relaxed) * lane->count[layer].load();
  }
  const uint64_t budget = std::max(kPaddingFloorBps, uint64_t(double(sent) * kPaddingShare));
  const uint64_t used = st.core->probing_bps.load(std::memory_order_relaxed);
  return budget > used ? budget - used : 0;
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
    st.core->probing_bps.fetch_sub(sub->probe_full_bps.exchange(0), std::memory_order_relaxed);
    for (auto &in : st.inputs)
      if (in) in->keyframes.forget(id);
    if (sub->pad) {
      auto list = std::make_shared<SubscriberList>();
      for (const auto &s : *st.with_pads)
        if (s != sub) list->push_back(s);
      st.with_pads = std::move(list);
    }
  }
  stop_waiting(*st.core, *sub);
  if (sub->shard >= 0) {
    leave_shard(st.core, std::move(sub));
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
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  for (auto &in : fanout->state->inputs)
    if (in) in->keyframes.set_min_interval(std::chrono::milliseconds(milliseconds));
}

void fanout_set_report_time(WbFanout *fanout, ReportTime time, std::shared_ptr<CaptureDelays> delays) {
  std::lock_guard<std::mutex> lock(fanout->state->lock);
  fanout->state->report_time.store(time, std::memory_order_relaxed);
  fanout->state->delays = std::move(delays);
}

void fanout_set_start_bitrate(WbFanout *fanout, uint64_t bits_per_second) {
  fanout->state->start_bitrate.store(bits_per_second, std::memory_order_relaxed);
}

uint64_t fanout_start_bitrate(WbFanout *fanout) { return fanout->state->start_bitrate.load(std::memory_order_relaxed); }

FanoutStats fanout_get_stats(WbFanout *fanout) {
  FanoutState &st = *fanout->state;
  FanoutStats stats;
  stats.bytes_out = st.core->bytes_out.load();
  stats.packets_out = st.core->packets_out.load();
  stats.keyframe_wait = st.core->keyframe_wait.snapshot();
  stats.packets_retransmitted = st.core->retransmitted.load();
  stats.padding_bytes = st.core->padding_out.load();
  stats.nacked_not_kept = st.core->nacked_not_kept.load();
  stats.layer_switches = st.core->switches.load();
  std::lock_guard<std::mutex> lock(st.lock);
  for (unsigned i = 0; i < kMaxLayers; ++i) {
    const LayerInput *in = st.inputs[i].get();
    if (!in) continue;
    stats.packets_in += in->packets_in.load();
    stats.keyframe_requests_received += in->keyframes.requests_received();
    stats.keyframe_requests_sent += in->keyframes.requests_sent_upstream();
    stats.keyframe_requests_refused += in->keyframes.requests_refused();
    if (!in->sinkpad) continue;
    FanoutLayerStats layer;
    layer.index = i;
    layer.packets_in = in->packets_in.load();
    layer.bitrate = st.core->bitrates[i].load();
    layer.keyframe_requests_sent = in->keyframes.requests_sent_upstream();
    stats.layers.push_back(layer);
  }
  if (auto lanes = st.sharding.lanes)
    for (auto &layer : stats.layers)
      for (const auto &lane : *lanes) layer.subscribers += lane->count[layer.index].load();
  stats.subscribers = unsigned(st.subscribers.size());
  return stats;
}

}  // namespace wb
