// viewermanager: a bin that serves already-payloaded RTP to many WebRTC
// viewers (on the shared ICE-lite port, or a webrtcbin each), with its WHEP
// server and action signals.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

G_BEGIN_DECLS
#define GST_TYPE_VIEWER_MANAGER (gst_viewer_manager_get_type())
G_DECLARE_DERIVABLE_TYPE(GstViewerManager, gst_viewer_manager, GST, VIEWER_MANAGER, GstBin)

/**
 * GstViewerManagerClass:
 * @input_chain: the elements (floating, in order) that turn what arrives on
 *   the input pad `pad_name` as `caps` into RTP for the fan-out, added to
 *   `chain`; none for RTP itself. Called once per input, at its first caps.
 *   FALSE (after posting an element error) when the element does not take
 *   it. viewermanager takes RTP only; broadcastsink parses and payloads
 *   encoded media too, and is otherwise the same element.
 */
struct _GstViewerManagerClass {
  GstBinClass parent_class;
  gboolean (*input_chain)(GstViewerManager *self, const gchar *pad_name, const GstCaps *caps, GPtrArray *chain);
};
G_END_DECLS

namespace wb {

// The viewer-facing properties (broadcastsink inherits them); ids start at
// 1 in this order.
enum ViewerProperty : guint {
  PROP_PORT = 1,
  PROP_ADDRESS,
  PROP_MAX_VIEWERS,
  PROP_STUN_SERVER,
  PROP_TURN_SERVERS,
  PROP_KEYFRAME_MIN_INTERVAL,
  PROP_ICE_ADDRESS,
  PROP_VIEWER_TIMEOUT,
  PROP_VIEWER_COUNT,
  PROP_BYTES_SENT,
  PROP_KEYFRAME_REQUESTS,
  PROP_RETRANSMISSIONS,
  PROP_PUSH_URL,
  PROP_PUSH_TOKEN,
  PROP_PUSH_STATE,
  PROP_CHILDREN,
  PROP_NODE_PATH,
  PROP_DIRECT_SEND,
  PROP_DIRECT_VIEWERS,
  PROP_ICE_LITE,
  PROP_ICE_LITE_PORT,
  PROP_MAX_PENDING_VIEWERS,
  PROP_MAX_PENDING_WEBRTCBIN,
  PROP_OFFERS_PER_SECOND,
  PROP_HTTP_REQUEST_TIMEOUT,
  PROP_MAX_HTTP_CONNECTIONS,
  PROP_VIEWER_TOKEN,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_KEY,
  PROP_TLS_CA,
  PROP_SENDER_THREADS,
  PROP_SENDER_REPORT_TIME,
  PROP_START_BITRATE,
  PROP_METRICS_PATH,
  PROP_METRICS_TOKEN,
  N_VIEWER_PROPERTIES
};

// The signals in both elements' descriptions: gst-inspect-1.0 lists a
// signal's types but not its documentation.
#define WB_VIEWER_SIGNALS_DOC                                                                                        \
  " | Signals: add-viewer (offer) -> GstStructure viewer {status:int 201 or an HTTP error, id, answer, error}; "      \
  "remove-viewer (id) -> gboolean; "                                                                                 \
  "set-viewer-layer (id, layer) -> gboolean: pins the viewer's video to that layer (0: the video pad, n: video_n; " \
  "-1: its feedback chooses again), moving at the layer's next keyframe without a gap; FALSE for an unknown id "    \
  "or layer; "                                                                                                       \
  "get-viewer-stats (id) -> GstStructure viewer-stats, NULL for an unknown id: id, path (ice-lite or webrtcbin), "   \
  "state (negotiating, connected or closed), sends-direct (boolean); on the ICE-lite path also transport-state "     \
  "(new, connected, failed or closed), remote-address (ip:port media goes to), srtp-profile (what DTLS agreed: "   \
  "AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80 or _32; empty before), ice-protocol (udp, or tcp for ICE-TCP), "  \
  "tcp-packets-dropped (guint64: packets a slow TCP connection had no room for), and, counted from the connection "  \
  "on as guint64: rtcp-received (SRTCP packets that authenticated), srtcp-rejected, pli-received, fir-received "     \
  "(FIR entries), nack-received (NACK packets), nacked-packets (sequence numbers they ask for), consent-answers "   \
  "(our consent checks, RFC 7675, the viewer answered), dtls-released (boolean: OpenSSL's state for the viewer "  \
  "freed, once its first SRTCP packet proved it has the keys); and per stream "                                   \
  "once media starts, prefixed video- or audio-: ssrc, packets-sent and octets-sent (uint, payload octets, both "    \
  "wrapping at 2^32 as in RTCP sender reports), reports-received (uint, receiver report blocks about the stream), " \
  "and from the latest block (0 before one): fraction-lost (double, 0..1), packets-lost (int, cumulative), "        \
  "highest-seq (uint, extended), jitter (uint, RTP clock units), jitter-ms (double), rtt-ms (double, RFC 3550 "     \
  "round trip from LSR and DLSR, the latest measured; -1 until a block echoes one of our sender reports), "         \
  "sender-shard (int, the sender thread that sends the stream, see sender-threads); "                              \
  "with video: video-layer (int, the layer it is sent; -1 before its first keyframe or paused), video-layer-wanted " \
  "(int, the layer it moves to at that layer's next keyframe), video-paused (boolean: its network carries not "   \
  "even the lowest layer, it gets audio only until a retry fits), video-layers (uint, how many the node has), "   \
  "video-layer-pinned (boolean), video-layer-moves (uint, its feedback's choices), video-estimate (guint64, bits/s " \
  "its REMB says its network carries; 0: none), video-codec (string, the encoding name it decodes: it moves only " \
  "between the layers in that codec); "                                                                         \
  "viewer-joined (id) when a viewer's transport connects; viewer-left (id, reason) when a joined viewer is gone; " \
  "authorize (method, path, authorization, remote-address) -> gboolean, on the HTTP thread before a WHEP POST or " \
  "DELETE is read (FALSE: 401 without an Authorization header, else 403; no handler: allowed)"

}  // namespace wb
