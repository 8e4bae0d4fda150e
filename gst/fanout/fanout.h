// The fan-out: the one place where the shared, already-payloaded RTP stream
// of one medium is handed to every viewer.
//
// One sink pad receives the stream (from its own queue thread). Each viewer
// is a branch: a source pad linked to that viewer's transport. Per packet
// and per branch the fan-out only gates on a keyframe and rewrites the
// payload type and SSRC into a fresh header that shares the payload memory;
// nothing is encoded or copied per viewer. Branches never push back on the
// shared stream: flow errors of one branch are ignored.
//
// Keyframe requests from branches (upstream GstForceKeyUnit events, sent by
// a viewer's RTCP PLI/FIR) and joins go through one KeyframeRequests policy
// and leave the sink pad as at most one request per min interval.
//
// The last packets of the stream are kept once, in a PacketHistory, so a
// viewer's NACK is answered with the very packet again (same sequence
// number; no RTX stream) by that viewer's direct sender.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rtp/rtpcodec.h"
#include "transport/srtpsender.h"

G_BEGIN_DECLS
#define WB_TYPE_FANOUT (wb_fanout_get_type())
G_DECLARE_FINAL_TYPE(WbFanout, wb_fanout, WB, FANOUT, GstElement)
G_END_DECLS

namespace wb {

struct FanoutStats {
  uint64_t packets_in = 0;
  uint64_t bytes_out = 0;
  uint64_t keyframe_requests_received = 0;
  uint64_t keyframe_requests_sent = 0;
  uint64_t packets_retransmitted = 0;  // answers to viewers' NACKs
  uint64_t nacked_not_kept = 0;        // NACKed packets the history no longer had
  unsigned branches = 0;
};

// Caps of the shared stream (nullptr until media has arrived). Transfer full.
GstCaps *fanout_get_stream_caps(WbFanout *fanout);
Codec fanout_get_codec(WbFanout *fanout);

// Creates a branch whose packets carry `payload_type` and `ssrc`, with
// `caps` announced downstream, and links it to `peer` (nullptr: to nothing,
// for a transport fed only by a direct sender). Sticky events are
// sent at once so the transport knows its caps before it answers an offer;
// packets only flow after fanout_start_branch(). Returns the branch's
// source pad (owned by the fan-out; do not unref) or nullptr.
GstPad *fanout_add_branch(WbFanout *fanout, GstPad *peer, GstCaps *caps, uint8_t payload_type,
                          uint32_t ssrc);
// Starts delivery to a branch: it drops packets until a keyframe starts, and
// a keyframe is requested for it. With `direct`, the fan-out protects and
// sends the branch's packets itself and pushes none on its pad; the pad
// stays linked for caps and for keyframe requests coming back. Once only.
void fanout_start_branch(WbFanout *fanout, GstPad *branch_pad, std::unique_ptr<SrtpSender> direct = nullptr);
// A viewer's transport asks for a keyframe (RTCP PLI/FIR): coalesced with
// every other request like the upstream events of linked branches.
void fanout_request_keyframe(WbFanout *fanout);
// A viewer's transport reports packets of this direct branch lost (RTCP
// NACK): they are sent again from the fan-out's shared history of the
// stream at its next delivery (on the streaming thread, which owns the
// branch's SRTP context), within a budget per second. Any thread. (A
// viewer with a webrtcbin of its own is answered without NACK.)
void fanout_retransmit(WbFanout *fanout, GstPad *branch_pad, const std::vector<uint16_t> &seqs);
// Whether the branch has received a keyframe (its viewer can decode).
bool fanout_branch_has_keyframe(WbFanout *fanout, GstPad *branch_pad);
void fanout_remove_branch(WbFanout *fanout, GstPad *branch_pad);

void fanout_set_keyframe_min_interval(WbFanout *fanout, unsigned milliseconds);
FanoutStats fanout_get_stats(WbFanout *fanout);

}  // namespace wb
