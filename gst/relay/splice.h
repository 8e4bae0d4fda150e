// The splice: joins the RTP streams of successive upstream sessions (a
// relay's reconnections, a publisher that comes back) into one continuous
// stream, so the viewers downstream keep their sessions across upstream
// losses.
//
// One medium per splice. Each upstream session links a new sink pad; the
// newest one is the live one and anything still arriving on older ones is
// dropped. Every outgoing packet gets one SSRC and payload type for the
// splice's lifetime, sequence numbers that continue where the previous
// session stopped, and timestamps that advance by the wall-clock time of the
// gap. Header extensions and CSRCs are stripped: their ids were negotiated
// with the upstream, not with our viewers. The first session passes
// sequence numbers and timestamps through unchanged, which lets a benchmark
// match the same packet across relay hops.
//
// Sticky events (stream-start, caps, segment) go out once; EOS and flushes
// of an upstream session stay inside. Keyframe requests from downstream go
// to the live session.
#pragma once

#include <gst/gst.h>

#include <string>

#include "rtp/rtpcodec.h"

G_BEGIN_DECLS
#define WB_TYPE_SPLICE (wb_splice_get_type())
G_DECLARE_FINAL_TYPE(WbSplice, wb_splice, WB, SPLICE, GstElement)
G_END_DECLS

namespace wb {

// Links `upstream` (an upstream session's source pad) to a new sink pad,
// which becomes the live one. False when its caps carry another codec than
// the one this splice already sends (viewers cannot switch codecs).
bool splice_attach(WbSplice *splice, GstPad *upstream);
// Unlinks and releases every sink pad (the session is gone).
void splice_detach_all(WbSplice *splice);
// The codec sent so far (Codec::Unknown before the first packet's caps).
Codec splice_codec(WbSplice *splice);
// Monotonic time (µs) of the last packet sent, 0 if none.
gint64 splice_last_packet_us(WbSplice *splice);
// Announces the relay tree path (node ids from the root down to this
// relay) downstream, as a sticky "broadcast-path" event with a "path" field.
void splice_set_path(WbSplice *splice, const std::string &path);
// Ends the output stream (the element is shutting down, not an upstream loss).
void splice_send_eos(WbSplice *splice);

}  // namespace wb
