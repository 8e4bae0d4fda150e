#include "liteanswer.h"

#include <gst/sdp/sdp.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace wb {

namespace {

std::vector<std::string> bundle_group(const GstSDPMessage *msg) {
  for (guint i = 0; i < gst_sdp_message_attributes_len(msg); ++i) {
    const GstSDPAttribute *a = gst_sdp_message_get_attribute(msg, i);
    if (g_strcmp0(a->key, "group") != 0 || !a->value) continue;
    std::istringstream words(a->value);
    std::string semantics, mid;
    words >> semantics;
    if (semantics != "BUNDLE") continue;
    std::vector<std::string> mids;
    while (words >> mid) mids.push_back(mid);
    return mids;
  }
  return {};
}

// The feedback we honour: picture loss and full intra requests go to the
// fan-out's keyframe policy, generic NACK to its packet history, the
// receiver's estimate (REMB) to the viewer's choice of layer.
bool feedback_we_honour(const std::string &value) {
  return value == "nack" || value == "nack pli" || value == "ccm fir" || value == "goog-remb";
}

}  // namespace

LiteOffer read_lite_offer(const std::string &offer_sdp, const OfferCheck &check) {
  LiteOffer result;
  ParsedSdp sdp;
  if (!sdp.parse(offer_sdp)) {
    result.problem = "unreadable SDP";
    return result;
  }
  std::vector<std::string> bundle = bundle_group(sdp.msg);
  std::string setup;
  unsigned accepted = 0;
  for (const auto &choice : check.media) {
    if (!choice.accepted()) continue;
    ++accepted;
    const GstSDPMedia *media = gst_sdp_message_get_media(sdp.msg, choice.mline);
    if (!media) continue;
    if (!gst_sdp_media_get_attribute_val(media, "rtcp-mux") && !gst_sdp_message_get_attribute_val(sdp.msg, "rtcp-mux")) {
      result.problem = "m-line " + std::to_string(choice.mline) + " does not multiplex RTCP (no a=rtcp-mux)";
      return result;
    }
    if (accepted > 1 && std::find(bundle.begin(), bundle.end(), choice.mid) == bundle.end()) {
      result.problem = "the media are not in one BUNDLE group";
      return result;
    }
    const char *fingerprint = sdp_media_or_session_attribute(sdp.msg, media, "fingerprint");
    std::string fp = fingerprint ? fingerprint : "";
    auto space = fp.find(' ');
    if (space == std::string::npos || g_ascii_strcasecmp(fp.substr(0, space).c_str(), "sha-256") != 0) {
      result.problem = "the DTLS fingerprint is not sha-256";
      return result;
    }
    result.remote_fingerprint = fp.substr(space + 1);
    const char *s = sdp_media_or_session_attribute(sdp.msg, media, "setup");
    setup = s ? s : "actpass";
    const char *ufrag = sdp_media_or_session_attribute(sdp.msg, media, "ice-ufrag");
    const char *pwd = sdp_media_or_session_attribute(sdp.msg, media, "ice-pwd");
    result.ice_ufrag = ufrag ? ufrag : "";
    result.ice_pwd = pwd ? pwd : "";
  }
  if (setup == "passive") {
    result.we_are_dtls_server = false;
  } else if (setup != "actpass" && setup != "active") {
    result.problem = "a=setup:" + setup + " leaves no DTLS role for us";
  }
  return result;
}

std::string write_lite_answer(const std::string &offer_sdp, const OfferCheck &check, const LiteAnswerParams &params) {
  ParsedSdp offer;
  if (!offer.parse(offer_sdp)) return {};
  std::ostringstream out;
  // Bundled only if the offer asked for it (one accepted m-line may not).
  // webrtcbin 1.22 as the offerer has ICE only for the m-line its offer
  // tagged (the first of its group) and takes the bundle's transport from
  // the first of the answer's: with that m-line rejected, no media would
  // flow. So it stays in the group, inactive, when we have nothing for it.
  const std::vector<std::string> offered_bundle = bundle_group(offer.msg);
  const auto holds_bundle = [&](const MediaChoice &choice) {
    return choice.accepted() || (!offered_bundle.empty() && choice.mid == offered_bundle.front() &&
                                 (choice.kind == "video" || choice.kind == "audio"));
  };
  std::string bundle;
  if (!offered_bundle.empty())
    for (const auto &choice : check.media)
      if (holds_bundle(choice)) bundle += " " + choice.mid;
  out << "v=0\r\n"
      << "o=- " << g_random_int() << g_random_int_range(0, 1000000) << " 2 IN IP4 0.0.0.0\r\n"
      << "s=-\r\n"
      << "t=0 0\r\n"
      << (bundle.empty() ? "" : "a=group:BUNDLE" + bundle + "\r\n")
      << "a=ice-lite\r\n"
      << "a=msid-semantic: WMS broadcast\r\n";
  const auto transport = [&] {
    out << "a=ice-ufrag:" << params.ice_ufrag << "\r\n"
        << "a=ice-pwd:" << params.ice_pwd << "\r\n"
        << "a=fingerprint:sha-256 " << params.fingerprint << "\r\n"
        << "a=setup:" << (params.dtls_server ? "passive" : "active") << "\r\n";
  };
  const auto candidates = [&] {
    unsigned foundation = 1;
    // Priorities (RFC 8445 5.1.2.1): UDP host type preference 126; TCP's
    // lower (80), so that a viewer that can use UDP does, with RFC 6544
    // 4.2's local preference for a passive host candidate.
    for (const auto &c : params.candidates) {
      if (c.tcp)
        out << "a=candidate:" << foundation++ << " 1 tcp " << ((80u << 24) | ((2u << 13 | 8191u) << 8) | 255u) << " "
            << c.address << " " << c.port << " typ host tcptype passive\r\n";
      else
        out << "a=candidate:" << foundation++ << " 1 udp 2130706431 " << c.address << " " << c.port << " typ host\r\n";
    }
    out << "a=end-of-candidates\r\n";
  };
  for (const auto &choice : check.media) {
    const GstSDPMedia *media = gst_sdp_message_get_media(offer.msg, choice.mline);
    const char *proto = gst_sdp_media_get_proto(media) ? gst_sdp_media_get_proto(media) : "UDP/TLS/RTP/SAVPF";
    if (!choice.accepted()) {
      // Even a rejected section carries our transport and one offered
      // codec: webrtcbin 1.22 refuses the whole answer if any section lacks
      // ICE credentials, a fingerprint or a setup role, and werift throws on
      // a section without an rtpmap.
      const bool in_bundle = !bundle.empty() && holds_bundle(choice);
      const char *format = gst_sdp_media_formats_len(media) ? gst_sdp_media_get_format(media, 0) : "0";
      out << "m=" << choice.kind << (in_bundle ? " 9 " : " 0 ") << proto << " " << format << "\r\n"
          << "c=IN IP4 0.0.0.0\r\n";
      if (!choice.mid.empty()) out << "a=mid:" << choice.mid << "\r\n";
      transport();
      out << "a=inactive\r\n";
      if (in_bundle) out << "a=rtcp-mux\r\n";
      const int offered_pt = g_ascii_isdigit(format[0]) ? atoi(format) : -1;
      if (offered_pt >= 0)
        for (const auto &rtpmap : sdp_values_for_pt(media, "rtpmap", offered_pt))
          out << "a=rtpmap:" << offered_pt << " " << rtpmap << "\r\n";
      if (in_bundle) candidates();
      continue;
    }
    const int pt = choice.payload_type;
    const uint32_t ssrc = choice.mline < params.ssrcs.size() ? params.ssrcs[choice.mline] : 0;
    const uint32_t rtx_ssrc = choice.mline < params.rtx_ssrcs.size() ? params.rtx_ssrcs[choice.mline] : 0;
    const int rtx = rtx_ssrc ? choice.rtx_payload_type : -1;
    out << "m=" << choice.kind << " 9 " << proto << " " << pt << (rtx >= 0 ? " " + std::to_string(rtx) : "") << "\r\n"
        << "c=IN IP4 0.0.0.0\r\n"
        << "a=mid:" << choice.mid << "\r\n";
    transport();
    out << "a=sendonly\r\n"
        << "a=rtcp-mux\r\n";
    for (const auto &rtpmap : sdp_values_for_pt(media, "rtpmap", pt)) out << "a=rtpmap:" << pt << " " << rtpmap << "\r\n";
    if (choice.codec == Codec::H264) {
      out << "a=fmtp:" << pt << " level-asymmetry-allowed=1;packetization-mode=1;profile-level-id="
          << (choice.profile_level_id.empty() ? "42e01f" : choice.profile_level_id) << "\r\n";
    } else {
      for (const auto &fmtp : sdp_values_for_pt(media, "fmtp", pt)) out << "a=fmtp:" << pt << " " << fmtp << "\r\n";
    }
    for (const auto &fb : sdp_values_for_pt(media, "rtcp-fb", pt))
      if (feedback_we_honour(fb)) out << "a=rtcp-fb:" << pt << " " << fb << "\r\n";
    if (choice.abs_send_time_id) out << "a=extmap:" << choice.abs_send_time_id << " " << kAbsSendTimeUri << "\r\n";
    // RTX carries only the padding that probes the link (NACKs are answered
    // with the packet itself): a receiver counts it into its estimate only
    // on an SSRC it was told of.
    if (rtx >= 0)
      out << "a=rtpmap:" << rtx << " rtx/90000\r\n"
          << "a=fmtp:" << rtx << " apt=" << pt << "\r\n";
    const std::string track = choice.kind + "-" + std::to_string(ssrc);
    out << "a=msid:broadcast " << track << "\r\n";
    if (rtx >= 0) out << "a=ssrc-group:FID " << ssrc << " " << rtx_ssrc << "\r\n";
    for (uint32_t s : {ssrc, rtx >= 0 ? rtx_ssrc : 0u}) {
      if (!s) continue;
      out << "a=ssrc:" << s << " cname:" << params.cname << "\r\n"
          << "a=ssrc:" << s << " msid:broadcast " << track << "\r\n";
    }
    candidates();
  }
  return out.str();
}

}  // namespace wb
