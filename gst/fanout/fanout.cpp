#include "fanout.h"

#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video-event.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "fanout/packethistory.h"
#include "keyframes/keyframerequests.h"
#include "transport/srtpsender.h"

GST_DEBUG_CATEGORY_STATIC(wb_fanout_debug);
#define GST_CAT_DEFAULT wb_fanout_debug

namespace {

using wb::Codec;
using wb::KeyframeRequests;

struct Branch {
  Branch(GstPad *p, uint8_t payload_type, uint32_t s)
      : pad(GST_PAD(gst_object_ref(p))), pt(payload_type), ssrc(s) {}
  ~Branch() { gst_object_unref(pad); }
  Branch(const Branch &) = delete;
  Branch &operator=(const Branch &) = delete;

  GstPad *pad;
  const uint8_t pt;
  const uint32_t ssrc;
  std::atomic<bool> started{false};
  std::atomic<bool> has_keyframe{false};
  // Set before `started`, then only read by the streaming thread: when set,
  // packets bypass the pad (and the viewer's webrtcbin) entirely.
  std::unique_ptr<wb::SrtpSender> direct;
  gint64 shown_to_pad_us = 0;  // direct branches: see deliver()

  // Sequence numbers the viewer reported lost (NACK), from its transport's
  // thread, for the streaming thread: only that thread may use the direct
  // sender's SRTP context and the history, so it answers at its next
  // delivery.
  std::mutex nack_lock;
  std::vector<uint16_t> nacked;
  std::atomic<bool> has_nacks{false};
  // Streaming thread only.
  uint16_t last_seq = 0;   // the newest packet sent to the branch
  uint32_t delivered = 0;  // packets sent to the branch, for retransmit()
  gint64 budget_start_us = 0;
  unsigned budget_used = 0;
};

// Retransmissions per branch and second at most: a NACK names up to 17
// packets, so without a bound one viewer could make us send far more than
// the stream (800 kbps video is ~100 packets a second).
constexpr unsigned kMaxRetransmitsPerSecond = 200;
// NACKed packets a branch may have waiting.
constexpr size_t kMaxPendingNacks = 512;

using BranchList = std::vector<std::shared_ptr<Branch>>;

// One incoming packet, inspected once for all branches.
struct Packet {
  GstBuffer *buffer = nullptr;
  guint header_len = 0;
  bool starts_keyframe = false;
  GstMapInfo map = GST_MAP_INFO_INIT;  // the whole packet, for direct branches
  bool mapped = false;
};

struct FanoutState {
  std::mutex lock;
  // Copy-on-write: the streaming thread takes a reference to the current
  // list and delivers without holding the lock while branches come and go.
  std::shared_ptr<const BranchList> branches = std::make_shared<BranchList>();
  GstCaps *caps = nullptr;
  Codec codec = Codec::Unknown;
  GstSegment segment;
  bool have_segment = false;
  unsigned next_branch_id = 0;
  KeyframeRequests keyframes;
  std::atomic<uint64_t> packets_in{0};
  std::atomic<uint64_t> bytes_out{0};
  // Streaming thread only: see deliver() and retransmit().
  wb::PacketHistory history;
  std::atomic<uint64_t> retransmitted{0};
  std::atomic<uint64_t> nacked_not_kept{0};
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

std::shared_ptr<const BranchList> snapshot(WbFanout *self) {
  std::lock_guard<std::mutex> lock(self->state->lock);
  return self->state->branches;
}

std::shared_ptr<Branch> find_branch(WbFanout *self, GstPad *pad) {
  auto list = snapshot(self);
  for (const auto &b : *list)
    if (b->pad == pad) return b;
  return nullptr;
}

void send_keyframe_request(WbFanout *self) {
  GST_DEBUG_OBJECT(self, "asking upstream for a keyframe");
  gst_pad_push_event(self->sinkpad,
                     gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
}

// A header copy with this branch's payload type and SSRC, followed by the
// shared payload memory (referenced, not copied).
GstBuffer *branch_packet(const Packet &pkt, const guint8 *header, const Branch &branch) {
  GstBuffer *out = gst_buffer_new();
  GstMemory *mem = gst_allocator_alloc(nullptr, pkt.header_len, nullptr);
  GstMapInfo map;
  gst_memory_map(mem, &map, GST_MAP_WRITE);
  memcpy(map.data, header, pkt.header_len);
  map.data[1] = (map.data[1] & 0x80) | (branch.pt & 0x7f);
  GST_WRITE_UINT32_BE(map.data + 8, branch.ssrc);
  gst_memory_unmap(mem, &map);
  gst_buffer_append_memory(out, mem);
  gst_buffer_copy_into(out, pkt.buffer,
                       GstBufferCopyFlags(GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_FLAGS |
                                          GST_BUFFER_COPY_TIMESTAMPS),
                       pkt.header_len, -1);
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

// Answers a direct branch's NACKs from the shared history, through its
// sender. Returns the bytes queued. Streaming thread.
uint64_t retransmit(WbFanout *self, Branch &branch, wb::SendBatch &batch, gint64 now) {
  FanoutState &st = *self->state;
  std::vector<uint16_t> seqs;
  {
    std::lock_guard<std::mutex> lock(branch.nack_lock);
    seqs.swap(branch.nacked);
    branch.has_nacks.store(false, std::memory_order_relaxed);
  }
  if (now - branch.budget_start_us >= G_USEC_PER_SEC) {
    branch.budget_start_us = now;
    branch.budget_used = 0;
  }
  std::vector<wb::RtpPacketRef> found;
  uint64_t not_kept = 0, over_budget = 0;
  for (uint16_t seq : seqs) {
    // Only what this branch was sent: not what came before its keyframe.
    if (uint16_t(branch.last_seq - seq) >= branch.delivered) continue;
    const wb::RtpPacketRef *packet = st.history.find(seq);
    if (!packet) {
      ++not_kept;
    } else if (branch.budget_used >= kMaxRetransmitsPerSecond) {
      ++over_budget;
    } else {
      ++branch.budget_used;
      found.push_back(*packet);
    }
  }
  if (not_kept || over_budget)
    GST_DEBUG_OBJECT(self, "branch %s: %" G_GUINT64_FORMAT " NACKed packets no longer kept, %" G_GUINT64_FORMAT
                     " over the retransmission budget", GST_PAD_NAME(branch.pad), not_kept, over_budget);
  st.nacked_not_kept += not_kept;
  st.retransmitted += found.size();
  if (found.empty()) return 0;
  GST_LOG_OBJECT(self, "branch %s: retransmitting %zu packets", GST_PAD_NAME(branch.pad), found.size());
  return branch.direct->send(found.data(), found.size(), branch.pt, branch.ssrc, batch);
}

void deliver(WbFanout *self, std::vector<Packet> &packets) {
  FanoutState &st = *self->state;
  std::shared_ptr<const BranchList> branches;
  Codec codec;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    branches = st.branches;
    codec = st.codec;
  }

  // Inspect every packet once; the per-branch loop below only copies headers.
  std::vector<guint8> headers;
  std::vector<size_t> header_offsets;
  bool any_keyframe = false;
  for (auto &pkt : packets) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    header_offsets.push_back(headers.size());
    if (!gst_rtp_buffer_map(pkt.buffer, GST_MAP_READ, &rtp)) {
      pkt.header_len = 0;
      continue;
    }
    pkt.header_len = gst_rtp_buffer_get_header_len(&rtp);
    pkt.starts_keyframe = wb::rtp_payload_starts_keyframe(
        codec, static_cast<const uint8_t *>(gst_rtp_buffer_get_payload(&rtp)),
        gst_rtp_buffer_get_payload_len(&rtp));
    gst_rtp_buffer_unmap(&rtp);
    size_t at = headers.size();
    headers.resize(at + pkt.header_len);
    gst_buffer_extract(pkt.buffer, 0, headers.data() + at, pkt.header_len);
    any_keyframe |= pkt.starts_keyframe && wb::codec_is_video(codec);
  }
  st.packets_in += packets.size();
  if (any_keyframe) st.keyframes.keyframe_sent();

  // Direct branches and the history read the packets as plain bytes: map
  // each once.
  std::vector<wb::RtpPacketRef> refs;
  bool any_direct = false;
  for (const auto &branch : *branches)
    any_direct |= branch->started.load(std::memory_order_acquire) && branch->direct;
  // Only direct senders (and their retransmissions, which only they make)
  // need the time and the sample time: not the webrtcbin-only path.
  const gint64 now = any_direct ? g_get_monotonic_time() : 0;
  const gint64 sampled_us = any_direct ? sampled_time_us(self, packets.front().buffer, now) : 0;
  refs.reserve(packets.size());
  for (auto &pkt : packets) {
    if (!pkt.header_len) continue;
    pkt.mapped = gst_buffer_map(pkt.buffer, &pkt.map, GST_MAP_READ);
    if (!pkt.mapped) continue;
    refs.push_back({pkt.map.data, pkt.map.size, pkt.header_len, sampled_us});
    st.history.record(refs.back());
  }

  bool waiting = false;
  uint64_t bytes = 0;
  wb::SendBatch &batch = wb::SendBatch::for_this_thread();
  for (const auto &branch : *branches) {
    if (!branch->started.load(std::memory_order_acquire)) continue;
    size_t first = 0;
    if (!branch->has_keyframe.load(std::memory_order_relaxed)) {
      while (first < packets.size() &&
             !(packets[first].header_len && packets[first].starts_keyframe))
        ++first;
      if (first == packets.size()) {
        waiting = true;
        continue;
      }
      GST_DEBUG_OBJECT(self, "branch %s: keyframe, starting delivery", GST_PAD_NAME(branch->pad));
      branch->has_keyframe.store(true, std::memory_order_relaxed);
    }
    // Before the new packets, so these stay the last the sender counted.
    if (branch->has_nacks.load(std::memory_order_acquire)) bytes += retransmit(self, *branch, batch, now);
    for (size_t i = first; i < packets.size(); ++i) {
      if (!packets[i].mapped) continue;
      branch->last_seq = uint16_t(packets[i].map.data[2] << 8 | packets[i].map.data[3]);
      ++branch->delivered;
    }
    if (branch->direct) {
      // refs skips unmappable packets, so count from its end.
      size_t skip = 0;
      for (size_t i = 0; i < first; ++i) skip += packets[i].mapped;
      bytes += branch->direct->send(refs.data() + skip, refs.size() - skip, branch->pt, branch->ssrc, batch);
      // A viewer's webrtcbin writes the RTCP sender reports a browser
      // needs for lip sync from the packets it sees: show it one a second.
      // It sends the very same SRTP packet again, which the viewer drops as
      // a replay. (A branch linked to nothing has a transport that writes
      // its own reports.)
      if (now - branch->shown_to_pad_us >= G_USEC_PER_SEC && first < packets.size() && packets[first].header_len) {
        branch->shown_to_pad_us = now;
        if (gst_pad_is_linked(branch->pad))
          gst_pad_push(branch->pad, branch_packet(packets[first], headers.data() + header_offsets[first], *branch));
      }
      continue;
    }
    GstBufferList *list = gst_buffer_list_new_sized(packets.size() - first);
    for (size_t i = first; i < packets.size(); ++i) {
      if (!packets[i].header_len) continue;
      GstBuffer *out = branch_packet(packets[i], headers.data() + header_offsets[i], *branch);
      bytes += gst_buffer_get_size(out);
      gst_buffer_list_add(list, out);
    }
    // A viewer's flow result never reaches the shared stream: a dead or
    // flushing transport must not stop the others.
    if (gst_buffer_list_length(list) == 1) {
      GstBuffer *only = gst_buffer_ref(gst_buffer_list_get(list, 0));
      gst_buffer_list_unref(list);
      gst_pad_push(branch->pad, only);
    } else {
      gst_pad_push_list(branch->pad, list);
    }
  }
  if (any_direct) batch.flush();
  for (auto &pkt : packets)
    if (pkt.mapped) gst_buffer_unmap(pkt.buffer, &pkt.map);
  st.bytes_out += bytes;
  if (wb::codec_is_video(codec) && st.keyframes.due(KeyframeRequests::Clock::now(), waiting))
    send_keyframe_request(self);
}

GstFlowReturn sink_chain(GstPad *, GstObject *parent, GstBuffer *buffer) {
  std::vector<Packet> packets(1);
  packets[0].buffer = buffer;
  deliver(WB_FANOUT(parent), packets);
  gst_buffer_unref(buffer);
  return GST_FLOW_OK;
}

GstFlowReturn sink_chain_list(GstPad *, GstObject *parent, GstBufferList *list) {
  guint n = gst_buffer_list_length(list);
  std::vector<Packet> packets(n);
  for (guint i = 0; i < n; ++i) packets[i].buffer = gst_buffer_list_get(list, i);
  deliver(WB_FANOUT(parent), packets);
  gst_buffer_list_unref(list);
  return GST_FLOW_OK;
}

void push_to_branches(WbFanout *self, GstEvent *event) {
  auto branches = snapshot(self);
  for (const auto &b : *branches) gst_pad_push_event(b->pad, gst_event_ref(event));
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
      // Each branch announces the caps its own viewer negotiated.
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
      push_to_branches(self, event);
      return TRUE;
    case GST_EVENT_SEGMENT: {
      {
        std::lock_guard<std::mutex> lock(st.lock);
        gst_event_copy_segment(event, &st.segment);
        st.have_segment = true;
      }
      push_to_branches(self, event);
      return TRUE;
    }
    default:
      push_to_branches(self, event);
      return TRUE;
  }
}

gboolean sink_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  // Allocation is not a question for viewers' transports (the default would
  // ask each of them in turn).
  if (GST_QUERY_TYPE(query) == GST_QUERY_ALLOCATION) return FALSE;
  return gst_pad_query_default(pad, parent, query);
}

gboolean src_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  WbFanout *self = WB_FANOUT(parent);
  if (gst_video_event_is_force_key_unit(event)) {
    GST_DEBUG_OBJECT(self, "keyframe request from branch %s", GST_PAD_NAME(pad));
    if (self->state->keyframes.request(KeyframeRequests::Clock::now())) send_keyframe_request(self);
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
      "Shares one RTP stream with many viewer branches (keyframe gate, PT/SSRC rewrite)",
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

GstPad *fanout_add_branch(WbFanout *fanout, GstPad *peer, GstCaps *caps, uint8_t payload_type,
                          uint32_t ssrc) {
  FanoutState &st = *fanout->state;
  unsigned id;
  GstSegment segment;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    id = st.next_branch_id++;
    segment = st.segment;
  }
  gchar *name = g_strdup_printf("src_%u", id);
  GstPad *pad = gst_pad_new_from_static_template(&src_template, name);
  g_free(name);
  gst_pad_set_event_function(pad, src_event);
  gst_pad_set_query_function(pad, src_query);
  gst_pad_set_active(pad, TRUE);
  gst_element_add_pad(GST_ELEMENT(fanout), pad);
  if (peer && GST_PAD_LINK_FAILED(gst_pad_link(pad, peer))) {
    GST_WARNING_OBJECT(fanout, "could not link branch to %" GST_PTR_FORMAT, peer);
    gst_pad_set_active(pad, FALSE);
    gst_element_remove_pad(GST_ELEMENT(fanout), pad);
    return nullptr;
  }

  gchar *stream_id = gst_pad_create_stream_id_printf(pad, GST_ELEMENT(fanout), "%u", id);
  gst_pad_push_event(pad, gst_event_new_stream_start(stream_id));
  g_free(stream_id);
  gst_pad_push_event(pad, gst_event_new_caps(caps));
  gst_pad_push_event(pad, gst_event_new_segment(&segment));

  auto branch = std::make_shared<Branch>(pad, payload_type, ssrc);
  {
    std::lock_guard<std::mutex> lock(st.lock);
    auto list = std::make_shared<BranchList>(*st.branches);
    list->push_back(branch);
    st.branches = std::move(list);
  }
  GST_INFO_OBJECT(fanout, "branch %s: pt %u ssrc %u caps %" GST_PTR_FORMAT, GST_PAD_NAME(pad),
                  payload_type, ssrc, caps);
  return pad;
}

void fanout_start_branch(WbFanout *fanout, GstPad *branch_pad, std::unique_ptr<SrtpSender> direct) {
  auto branch = find_branch(fanout, branch_pad);
  if (!branch || branch->started.load()) return;
  branch->direct = std::move(direct);
  branch->started.store(true, std::memory_order_release);
  if (codec_is_video(fanout_get_codec(fanout)) &&
      fanout->state->keyframes.request(KeyframeRequests::Clock::now()))
    send_keyframe_request(fanout);
}

void fanout_request_keyframe(WbFanout *fanout) {
  GST_DEBUG_OBJECT(fanout, "keyframe request from a viewer's transport");
  if (fanout->state->keyframes.request(KeyframeRequests::Clock::now())) send_keyframe_request(fanout);
}

void fanout_retransmit(WbFanout *fanout, GstPad *branch_pad, const std::vector<uint16_t> &seqs) {
  auto branch = find_branch(fanout, branch_pad);
  // `direct` is set before `started` and never changes after.
  if (!branch || seqs.empty() || !branch->started.load(std::memory_order_acquire) || !branch->direct) return;
  std::lock_guard<std::mutex> lock(branch->nack_lock);
  const size_t room = kMaxPendingNacks - std::min(kMaxPendingNacks, branch->nacked.size());
  if (seqs.size() > room)
    GST_DEBUG_OBJECT(fanout, "branch %s: %zu NACKs dropped", GST_PAD_NAME(branch_pad), seqs.size() - room);
  branch->nacked.insert(branch->nacked.end(), seqs.begin(), seqs.begin() + std::min(seqs.size(), room));
  branch->has_nacks.store(true, std::memory_order_release);
}

bool fanout_branch_has_keyframe(WbFanout *fanout, GstPad *branch_pad) {
  auto branch = find_branch(fanout, branch_pad);
  return branch && branch->has_keyframe.load();
}

void fanout_remove_branch(WbFanout *fanout, GstPad *branch_pad) {
  FanoutState &st = *fanout->state;
  std::shared_ptr<Branch> removed;
  {
    std::lock_guard<std::mutex> lock(st.lock);
    auto list = std::make_shared<BranchList>();
    for (const auto &b : *st.branches) {
      if (b->pad == branch_pad)
        removed = b;
      else
        list->push_back(b);
    }
    st.branches = std::move(list);
  }
  if (!removed) return;
  GstPad *peer = gst_pad_get_peer(branch_pad);
  if (peer) {
    gst_pad_unlink(branch_pad, peer);
    gst_object_unref(peer);
  }
  gst_pad_set_active(branch_pad, FALSE);
  gst_element_remove_pad(GST_ELEMENT(fanout), branch_pad);
}

void fanout_set_keyframe_min_interval(WbFanout *fanout, unsigned milliseconds) {
  fanout->state->keyframes.set_min_interval(std::chrono::milliseconds(milliseconds));
}

FanoutStats fanout_get_stats(WbFanout *fanout) {
  FanoutState &st = *fanout->state;
  FanoutStats stats;
  stats.packets_in = st.packets_in.load();
  stats.bytes_out = st.bytes_out.load();
  stats.keyframe_requests_received = st.keyframes.requests_received();
  stats.keyframe_requests_sent = st.keyframes.requests_sent_upstream();
  stats.packets_retransmitted = st.retransmitted.load();
  stats.nacked_not_kept = st.nacked_not_kept.load();
  stats.branches = unsigned(snapshot(fanout)->size());
  return stats;
}

}  // namespace wb
