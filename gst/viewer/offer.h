// Checking a viewer's SDP offer before any webrtcbin sees it, and repairing
// the answer webrtcbin writes. Pure functions of SDP text: unit-tested
// without a pipeline.
//
// webrtcbin in GStreamer 1.22 aborts the process when a pad's payload type
// is not in the remote offer, so every payload type we will send is chosen
// here, from the offer, per viewer.
#pragma once

#include <gst/gst.h>
#include <gst/sdp/sdp.h>

#include <string>
#include <vector>

#include "common/gptr.h"
#include "rtp/rtpcodec.h"

namespace wb {

// What the broadcast sends on one medium (Codec::Unknown: nothing).
struct StreamFormat {
  Codec codec = Codec::Unknown;
  std::string h264_profile_level_id;  // e.g. "42e01f", empty if not known
};

// The RTP header extension that says when a packet was sent.
constexpr const char *kAbsSendTimeUri = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

// The choice for one m-line of the offer.
struct MediaChoice {
  guint mline = 0;
  std::string kind;  // "video" / "audio" / other
  std::string mid;
  int payload_type = -1;  // -1: rejected
  Codec codec = Codec::Unknown;
  std::string profile_level_id;  // H.264: as offered for that payload type
  // Video: the offer's RTX payload type for it (-1: none), on which the
  // ICE-lite path sends the padding that probes a viewer's link.
  int rtx_payload_type = -1;
  // The offer's id for abs-send-time on this m-line (RFC 8285 one-byte ids,
  // 1-14; 0: not offered), which the ICE-lite path then writes.
  int abs_send_time_id = 0;
  CapsPtr caps;                  // RTP caps for that payload type, as offered
  std::string reason;            // why rejected
  bool accepted() const { return payload_type >= 0; }
};

struct OfferCheck {
  int status = 0;  // 0: usable; else the HTTP status to answer (400, 406)
  std::string error;
  std::vector<MediaChoice> media;
};

// Who made the offer: a viewer must receive what we send; a publisher (WHIP
// ingest) must send, and `video`/`audio` then name the codec we accept.
enum class Offerer { Viewer, Publisher };

OfferCheck check_offer(const std::string &sdp, const StreamFormat &video, const StreamFormat &audio,
                       Offerer offerer = Offerer::Viewer);
// The same when the video is sent in several codecs (layers in VP8 beside
// H.264): the first of `video` the offer can take is chosen.
OfferCheck check_offer(const std::string &sdp, const std::vector<StreamFormat> &video, const StreamFormat &audio,
                       Offerer offerer = Offerer::Viewer);

// SDP text parsed into a GstSDPMessage, freed with the holder.
struct ParsedSdp {
  GstSDPMessage *msg = nullptr;
  ParsedSdp() = default;
  ~ParsedSdp();
  ParsedSdp(const ParsedSdp &) = delete;
  ParsedSdp &operator=(const ParsedSdp &) = delete;
  bool parse(const std::string &text);
};

// An attribute of the m-line, or of the session when the m-line has none.
const char *sdp_media_or_session_attribute(const GstSDPMessage *msg, const GstSDPMedia *media, const char *key);

// What follows "a=<key>:<pt> " in each such attribute of `media` (fmtp,
// rtcp-fb, rtpmap), in order.
std::vector<std::string> sdp_values_for_pt(const GstSDPMedia *media, const char *key, int pt);

// Puts back what 1.22 leaves out of H.264 answers (profile-level-id,
// packetization-mode, level-asymmetry-allowed) for each accepted m-line.
// Returns the input unchanged if it cannot be parsed.
std::string repair_answer(const std::string &answer_sdp, const OfferCheck &offer);

}  // namespace wb
