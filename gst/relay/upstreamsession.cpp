#include "upstreamsession.h"

#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <mutex>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_relay_debug

namespace wb {

namespace {

// Payload types of our own offers; any upstream maps them as it likes.
GstStructure *codec_structure(Codec codec) {
  switch (codec) {
    case Codec::H264:
      return gst_structure_new("application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name",
                               G_TYPE_STRING, "H264", "clock-rate", G_TYPE_INT, 90000, "payload", G_TYPE_INT,
                               102, "packetization-mode", G_TYPE_STRING, "1", "profile-level-id",
                               G_TYPE_STRING, "42e01f", "level-asymmetry-allowed", G_TYPE_STRING, "1",
                               "rtcp-fb-nack-pli", G_TYPE_BOOLEAN, TRUE, "rtcp-fb-ccm-fir", G_TYPE_BOOLEAN,
                               TRUE, nullptr);
    case Codec::VP8:
    case Codec::VP9:
      return gst_structure_new("application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name",
                               G_TYPE_STRING, codec == Codec::VP8 ? "VP8" : "VP9", "clock-rate", G_TYPE_INT,
                               90000, "payload", G_TYPE_INT, codec == Codec::VP8 ? 96 : 98,
                               "rtcp-fb-nack-pli", G_TYPE_BOOLEAN, TRUE, "rtcp-fb-ccm-fir", G_TYPE_BOOLEAN,
                               TRUE, nullptr);
    case Codec::Opus:
      return gst_structure_new("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name",
                               G_TYPE_STRING, "OPUS", "clock-rate", G_TYPE_INT, 48000, "payload", G_TYPE_INT,
                               111, "encoding-params", G_TYPE_STRING, "2", nullptr);
    default:
      return nullptr;
  }
}

}  // namespace

struct UpstreamSession::Ours {
  std::mutex mutex;
  std::vector<GstWebRTCRTPTransceiver *> transceivers;  // owned references
  ~Ours() {
    for (auto *t : transceivers) gst_object_unref(t);
  }
  bool owns(GstPad *pad) {
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_object_get(pad, "transceiver", &trans, nullptr);
    if (!trans) return false;
    std::lock_guard<std::mutex> lock(mutex);
    bool found = std::find(transceivers.begin(), transceivers.end(), trans) != transceivers.end();
    gst_object_unref(trans);
    return found;
  }
};

void UpstreamSession::add_recvonly_transceiver(GstCaps *caps) {
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(peer_.webrtcbin(), "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps,
                        &trans);
  if (!trans) return;
  std::lock_guard<std::mutex> lock(ours_->mutex);
  ours_->transceivers.push_back(trans);
}

UpstreamSession::UpstreamSession(const std::string &name, GstBin *bin, const TransportConfig &config,
                                 unsigned latency_ms, StateListener on_state, PadListener on_pad)
    : peer_(name, config), ours_(std::make_shared<Ours>()), bin_(bin), created_us_(g_get_monotonic_time()) {
  // The jitter buffer only holds packets while it waits for a missing one;
  // a relay hop should not wait long, the viewers' own buffers reorder.
  if (peer_.webrtcbin()) g_object_set(peer_.webrtcbin(), "latency", latency_ms, nullptr);
  peer_.on_state(std::move(on_state));
  peer_.on_src_pad([ours = ours_, on_pad = std::move(on_pad)](GstPad *pad) {
    if (ours->owns(pad)) on_pad(pad);
    else GST_INFO("ignoring %s: an m-line we did not accept", GST_PAD_NAME(pad));
  });
}

UpstreamSession::~UpstreamSession() { close(); }

std::string UpstreamSession::make_offer(const std::vector<Codec> &video, bool audio, Deadline deadline,
                                        std::string *error) {
  if (!peer_.webrtcbin()) {
    *error = "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)";
    return "";
  }
  if (!video.empty()) {
    GstCaps *caps = gst_caps_new_empty();
    for (Codec c : video) gst_caps_append_structure(caps, codec_structure(c));
    add_recvonly_transceiver(caps);
    gst_caps_unref(caps);
  }
  if (audio) {
    GstCaps *caps = gst_caps_new_full(codec_structure(Codec::Opus), nullptr);
    add_recvonly_transceiver(caps);
    gst_caps_unref(caps);
  }
  peer_.start(bin_);
  *error = peer_.create_local(GST_WEBRTC_SDP_TYPE_OFFER);
  if (!error->empty()) return "";
  if (!peer_.wait_gathering(deadline)) {
    *error = "ICE gathering did not complete in time";
    return "";
  }
  // The upstream may be another stack's WHEP server (see the push).
  return offer_without_bundle_only(peer_.local_sdp());
}

std::string UpstreamSession::accept_answer(const std::string &answer_sdp) {
  std::string error = peer_.set_remote(GST_WEBRTC_SDP_TYPE_ANSWER, answer_sdp);
  if (!error.empty()) return error;
  peer_.watch_incoming();
  media_ = answered_media(answer_sdp);
  return "";
}

std::vector<std::string> answered_media(const std::string &answer_sdp) {
  std::vector<std::string> media;
  // GStreamer's parser asserts on an empty buffer (a critical, found by
  // the relay_answer harness).
  if (answer_sdp.empty()) return media;
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new(&sdp);
  gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(answer_sdp.data()), answer_sdp.size(), sdp);
  for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
    const GstSDPMedia *m = gst_sdp_message_get_media(sdp, i);
    const gchar *kind = gst_sdp_media_get_media(m);
    bool inactive = false;
    for (guint a = 0; a < gst_sdp_media_attributes_len(m); ++a)
      inactive |= g_strcmp0(gst_sdp_media_get_attribute(m, a)->key, "inactive") == 0;
    if (!kind || gst_sdp_media_get_port(m) == 0 || inactive) continue;
    if (g_str_equal(kind, "video") || g_str_equal(kind, "audio")) media.push_back(kind);
  }
  gst_sdp_message_free(sdp);
  return media;
}

std::string UpstreamSession::answer(const std::string &offer_sdp, const OfferCheck &check, Deadline deadline,
                                    std::string *error) {
  if (!peer_.webrtcbin()) {
    *error = "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)";
    return "";
  }
  // Receive exactly the codec chosen per m-line (no RTX, RED or FEC, and
  // never a codec the splice could not continue with). webrtcbin 1.22 pairs
  // m-lines of a remote offer with unassociated transceivers of the same
  // kind, in order, so these are made before the offer is applied.
  for (const auto &choice : check.media) {
    if (!choice.accepted()) continue;
    media_.push_back(choice.kind);
    GstCaps *caps = gst_caps_copy(choice.caps.get());
    gst_caps_set_simple(caps, "media", G_TYPE_STRING, choice.kind.c_str(), nullptr);
    add_recvonly_transceiver(caps);
    gst_caps_unref(caps);
  }
  peer_.start(bin_);
  *error = peer_.set_remote(GST_WEBRTC_SDP_TYPE_OFFER, offer_sdp);
  if (!error->empty()) return "";
  *error = peer_.create_local(GST_WEBRTC_SDP_TYPE_ANSWER);
  if (!error->empty()) return "";
  if (!peer_.wait_gathering(deadline)) {
    *error = "ICE gathering did not complete in time";
    return "";
  }
  std::string sdp = peer_.local_sdp();
  if (sdp.empty()) {
    *error = "webrtcbin has no local description";
    return "";
  }
  peer_.watch_incoming();
  return repair_answer(sdp, check);
}

void UpstreamSession::close() { peer_.close(); }

}  // namespace wb
