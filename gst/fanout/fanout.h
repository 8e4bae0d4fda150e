// The fan-out: the one place where the shared, already-payloaded RTP stream
// of one medium is handed to every viewer.
//
// One sink pad receives the stream (from its own queue thread, the
// streaming thread). Each viewer is a subscriber: an id, not a pad, that
// owns its rewrite state (payload type, SSRC, sequence-number and timestamp
// offsets), its keyframe gate, its NACK queue and its sender. The streaming
// thread inspects each packet batch once and hands it to each sender shard
// (see SenderPool) that has subscribers of this stream; the shard gates,
// rewrites, protects and sends for its own subscribers. Nothing is encoded
// or copied per viewer but a header and the SRTP output.
//
// A subscriber whose transport takes GStreamer buffers (a webrtcbin of its
// own, a WHIP push) also has a source pad linked to it, and is delivered by
// the streaming thread itself: these are few, and their pads also carry
// the stream's events. Flow errors of a pad never reach the shared stream.
//
// Keyframe requests from subscribers (RTCP PLI/FIR, or upstream
// GstForceKeyUnit events on their pads) and joins go through one
// KeyframeRequests policy and leave the sink pad as at most one request per
// min interval.
//
// The last packets of the stream are kept once, in a PacketHistory, so a
// viewer's NACK is answered with the very packet again (its own sequence
// number; no RTX stream) by that viewer's direct sender.
//
// Layers (simulcast): the same picture encoded at several qualities arrives
// on one sink pad each (`sink` is layer 0, request pads `sink_%u` the
// others), each from its own streaming thread, with its own history and
// keyframe requests. A subscriber is on one layer at a time; asked to move,
// it waits for a keyframe of the new layer (requested for that layer,
// coalesced with every other request for it) and switches there, its
// sequence numbers running on from the last it sent and its timestamps
// from the same instant on the new layer's clock: the viewer sees one
// stream without a gap or a jump, and its NACKs are answered from whichever
// layer sent the packet. Only subscribers on a sender shard can move; those
// with a pad stay on layer 0. Layers may be in different codecs (a VP8
// layer beside H.264 ones, for browsers that cannot decode H.264): each
// subscriber decodes one, and moves only between that codec's layers.
#pragma once

#include <gst/gst.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/histogram.h"
#include "fanout/capturedelays.h"
#include "fanout/senderpool.h"
#include "rtp/rtpcodec.h"
#include "transport/srtpsender.h"

G_BEGIN_DECLS
#define WB_TYPE_FANOUT (wb_fanout_get_type())
G_DECLARE_FINAL_TYPE(WbFanout, wb_fanout, WB, FANOUT, GstElement)
G_END_DECLS

namespace wb {

// Layers one fan-out takes at most.
constexpr unsigned kMaxLayers = 4;
// The "layer" of a subscriber sent no video at all (fanout_set_layer()).
constexpr unsigned kPaused = kMaxLayers;

struct FanoutLayerStats {
  unsigned index = 0;
  uint64_t packets_in = 0;
  // What the layer carries, measured over about the last second.
  uint64_t bitrate = 0;  // bits per second
  uint64_t keyframe_requests_sent = 0;
  unsigned subscribers = 0;  // on it or waiting for its keyframe to switch to it
};

struct FanoutStats {
  uint64_t packets_in = 0;
  uint64_t bytes_out = 0;
  uint64_t packets_out = 0;  // retransmissions not included
  uint64_t keyframe_requests_received = 0;
  uint64_t keyframe_requests_sent = 0;
  uint64_t keyframe_requests_refused = 0;  // viewers' requests within their back-off
  uint64_t packets_retransmitted = 0;  // answers to viewers' NACKs
  uint64_t nacked_not_kept = 0;        // NACKed packets the history no longer had
  unsigned subscribers = 0;
  uint64_t layer_switches = 0;
  uint64_t padding_bytes = 0;  // sent to probe viewers' links (in bytes_out too)
  // Seconds from a video viewer's start to its first keyframe.
  HistogramSnapshot keyframe_wait;
  std::vector<FanoutLayerStats> layers;  // the layers with a sink pad, by index
};

// A viewer's place in one fan-out. 0 is never a subscriber.
using SubscriberId = uint64_t;

// Caps of the shared stream (nullptr until media has arrived): of its
// first layer with caps. Transfer full.
GstCaps *fanout_get_stream_caps(WbFanout *fanout);
// Its first layer's codec (Unknown until caps arrive).
Codec fanout_get_codec(WbFanout *fanout);
// Each layer's codec (Unknown: no such layer, or no caps yet), and caps
// (transfer full; nullptr likewise). Layers may differ in codec (VP8 beside
// H.264 for browsers without an H.264 decoder); a viewer stays in one.
std::array<Codec, kMaxLayers> fanout_layer_codecs(WbFanout *fanout);
GstCaps *fanout_get_layer_caps(WbFanout *fanout, unsigned layer);

// A subscriber whose packets carry `rewrite`'s payload type and SSRC, its
// sequence numbers and timestamps shifted by its offsets. It gets nothing
// until fanout_start(). O(1): no pad, nothing walked. Its viewer decodes
// `codec` (Unknown: whatever layer 0 carries): it starts on the first
// layer in it and never leaves that codec's layers.
SubscriberId fanout_subscribe(WbFanout *fanout, const Rewrite &rewrite, Codec codec = Codec::Unknown);
// The same for a transport that takes GStreamer buffers: a source pad of
// the fan-out is linked to `peer` and sends `caps` (and the stream's sticky
// events) at once, so the transport knows its caps before it answers an
// offer. 0 when linking fails.
SubscriberId fanout_subscribe_pad(WbFanout *fanout, const Rewrite &rewrite, GstPad *peer, GstCaps *caps);
// Starts delivery: the subscriber drops packets until a keyframe starts, and
// a keyframe is requested for it. With `direct`, the fan-out protects and
// sends the packets itself: a subscriber without a pad on the shard of
// `pool` (required for it) with the fewest subscriptions, one with a pad on
// the streaming thread, and its pad then gets one packet a second, for the
// sender reports its transport writes.
// Without `direct`, packets go to the pad. Once only.
void fanout_start(WbFanout *fanout, SubscriberId id, std::unique_ptr<SrtpSender> direct = nullptr,
                  const std::shared_ptr<SenderPool> &pool = nullptr);
// A viewer's transport asks for a keyframe (RTCP PLI/FIR): coalesced with
// every other request like the upstream events of pads, and within the
// viewer's own back-off (KeyframeRequests).
void fanout_request_keyframe(WbFanout *fanout, SubscriberId from);
// The subscriber is a relay child: its keyframe requests are its own
// viewers' joins, and are never backed off.
void fanout_exempt_from_keyframe_backoff(WbFanout *fanout, SubscriberId id);
// A viewer's transport reports packets lost (RTCP NACK; sequence numbers as
// the viewer received them): they are sent again from the stream's shared
// history by the thread that delivers this subscriber, at its next
// delivery, within a budget per second. Any thread. Only for subscribers
// with a direct sender.
void fanout_retransmit(WbFanout *fanout, SubscriberId id, const std::vector<uint16_t> &seqs);
// Whether the subscriber has received a keyframe (its viewer can decode).
bool fanout_has_keyframe(WbFanout *fanout, SubscriberId id);
// The sender shard delivering the subscriber, or -1 (the streaming thread,
// or not started).
int fanout_shard_of(WbFanout *fanout, SubscriberId id);
// The layers with a sink pad, by index: 1 without simulcast.
unsigned fanout_layer_count(WbFanout *fanout);
// What each layer carries, bits per second over about the last second (0:
// no such layer, none in `codec` unless that is Unknown, or nothing
// measured yet), or with `peak` the highest of the last kPeakSeconds such
// measures (before the first second's, what it carried after its first
// quarter second). Cheap: no lock, for per-viewer decisions.
constexpr unsigned kPeakSeconds = 5;
std::array<uint64_t, kMaxLayers> fanout_layer_bitrates(WbFanout *fanout, Codec codec = Codec::Unknown,
                                                       bool peak = false);
// Moves the subscriber to `layer` at that layer's next keyframe (one is
// requested). kPaused: it is sent nothing of this stream from now on (a
// viewer whose network cannot carry even the lowest layer keeps its
// audio), until it is moved to a layer again, its sequence numbers then
// running on from where they stopped. Before fanout_start(): the layer it
// starts on (default: its codec's first). Any thread. False when the layer
// has no sink pad or is in another codec than the subscriber's, or the
// subscriber has a pad (it stays on layer 0) or is unknown.
bool fanout_set_layer(WbFanout *fanout, SubscriberId id, unsigned layer);
// The subscriber's RTX stream (the payload type its viewer offered for RTX
// of its video, our SSRC for it): where padding that probes its link goes.
// Before fanout_start(); only for a subscriber without a pad.
void fanout_set_padding_stream(WbFanout *fanout, SubscriberId id, uint8_t payload_type, uint32_t ssrc);
// Pads the subscriber's video with this many bits/s (0: none) of
// padding-only packets on its RTX stream, sent with its media, until set
// otherwise: the viewer's network then carries what the layer above would
// need, and its feedback says whether it can, before a switch. Any thread.
// False without an RTX stream. `full_bps`: the rate this probe's padding
// rises to, held against fanout_padding_room() from its start.
bool fanout_set_probe_rate(WbFanout *fanout, SubscriberId id, uint64_t bits_per_second, uint64_t full_bps = 0);
// Bits/s of padding a new probe may still take: all probes together stay
// under a share of the media the fan-out sends (at least a floor that lets
// a small audience probe freely), less the probes under way; none while a
// sender shard is behind.
uint64_t fanout_padding_room(WbFanout *fanout);
// The layer the subscriber is sent now (-1 before its first keyframe, or
// paused), and the one it was asked for (kPaused when paused; the same as
// the first when it is not moving).
int fanout_layer_of(WbFanout *fanout, SubscriberId id);
int fanout_wanted_layer_of(WbFanout *fanout, SubscriberId id);
// Ends the subscription; its sender and state are freed on the thread that
// delivered it, after its last delivery. Any thread but a delivering one.
void fanout_unsubscribe(WbFanout *fanout, SubscriberId id);

void fanout_set_keyframe_min_interval(WbFanout *fanout, unsigned milliseconds);

// Which instant a packet's RTP time stands for in the sender reports of
// ICE-lite viewers (webrtcbin writes its own viewers' reports).
enum class ReportTime {
  // When its first sample was taken (the buffer's running time): audio and
  // video of one instant get one NTP time, and a browser plays them in
  // sync, holding the stream that arrives earlier after capture.
  Capture,
  // When the fan-out sent it: each stream looks on time, nothing is held
  // to line them up (lower delay; the later stream plays that much behind).
  Send,
  // Capture, but audio that reaches its fan-out later after capture than
  // video is reported that much later (CaptureDelays): the picture is not
  // held for its sound, which plays up to 45 ms behind it.
  PictureFirst,
};
// `delays` is shared by the fan-outs of one broadcast's media.
void fanout_set_report_time(WbFanout *fanout, ReportTime time, std::shared_ptr<CaptureDelays> delays);
// The most a new viewer of this fan-out is started on, bits/s (0, the
// default: its codec's first layer whatever its rate): LayerChoice::start().
void fanout_set_start_bitrate(WbFanout *fanout, uint64_t bits_per_second);
uint64_t fanout_start_bitrate(WbFanout *fanout);
FanoutStats fanout_get_stats(WbFanout *fanout);

}  // namespace wb
