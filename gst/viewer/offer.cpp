#include "offer.h"

#include <gst/sdp/sdp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace wb {

namespace {

bool has_attr(const GstSDPMedia *media, const char *key) {
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); ++i)
    if (g_strcmp0(gst_sdp_media_get_attribute(media, i)->key, key) == 0) return true;
  return false;
}

// An m-line format as an RTP payload type: digits only and at most 127 (RTP
// has seven bits for it, and the fan-out writes it into every header), or
// -1.
int payload_type_of(const char *format) {
  if (!format || !*format || strlen(format) > 3) return -1;
  for (const char *c = format; *c; ++c)
    if (!g_ascii_isdigit(*c)) return -1;
  const int pt = atoi(format);
  return pt <= 127 ? pt : -1;
}

// "96 H264/90000" -> name, clock rate of payload type pt.
bool rtpmap_of(const GstSDPMedia *media, int pt, std::string &name, int &clock_rate) {
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); ++i) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute(media, i);
    if (g_strcmp0(a->key, "rtpmap") != 0 || !a->value) continue;
    char *end = nullptr;
    long p = strtol(a->value, &end, 10);
    if (p != pt || !end || *end != ' ') continue;
    std::string rest(end + 1);
    auto slash = rest.find('/');
    name = rest.substr(0, slash);
    clock_rate = slash == std::string::npos ? 0 : atoi(rest.c_str() + slash + 1);
    return true;
  }
  return false;
}

std::string fmtp_of(const GstSDPMedia *media, int pt) {
  auto values = sdp_values_for_pt(media, "fmtp", pt);
  return values.empty() ? std::string() : values.front();
}

std::string fmtp_param(const std::string &fmtp, const std::string &key) {
  std::stringstream ss(fmtp);
  std::string item;
  while (std::getline(ss, item, ';')) {
    auto b = item.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    item = item.substr(b);
    auto eq = item.find('=');
    if (eq != std::string::npos && g_ascii_strcasecmp(item.substr(0, eq).c_str(), key.c_str()) == 0)
      return item.substr(eq + 1);
  }
  return {};
}

int expected_clock_rate(Codec codec) { return codec == Codec::Opus ? 48000 : 90000; }

// Scores how well an offered format fits what we send; < 0 is unusable.
int score_format(const GstSDPMedia *media, int pt, const StreamFormat &ours) {
  std::string name;
  int clock_rate = 0;
  if (!rtpmap_of(media, pt, name, clock_rate)) return -1;
  if (codec_from_encoding_name(name) != ours.codec) return -1;
  if (clock_rate != expected_clock_rate(ours.codec)) return -1;
  if (ours.codec != Codec::H264) return 1;
  std::string fmtp = fmtp_of(media, pt);
  // Packetization mode 0 cannot carry the FU-A fragments we send.
  if (fmtp_param(fmtp, "packetization-mode") != "1") return -1;
  std::string plid = fmtp_param(fmtp, "profile-level-id");
  if (plid.size() != 6 || ours.h264_profile_level_id.size() != 6) return 1;
  // Same profile_idc and constraint flags: the viewer decodes exactly what we send.
  if (g_ascii_strncasecmp(plid.c_str(), ours.h264_profile_level_id.c_str(), 4) == 0) return 3;
  if (g_ascii_strncasecmp(plid.c_str(), ours.h264_profile_level_id.c_str(), 2) == 0) return 2;
  return 1;
}

std::string describe_offer_codecs(const GstSDPMedia *media) {
  std::string out;
  for (guint f = 0; f < gst_sdp_media_formats_len(media); ++f) {
    const int pt = payload_type_of(gst_sdp_media_get_format(media, f));
    if (pt < 0) continue;
    std::string name;
    int clock_rate;
    if (!rtpmap_of(media, pt, name, clock_rate)) continue;
    // Repair formats carry another codec's packets: not a codec to decode.
    static const char *const kRepair[] = {"rtx", "red", "ulpfec", "flexfec-03"};
    if (std::any_of(std::begin(kRepair), std::end(kRepair),
                    [&](const char *r) { return g_ascii_strcasecmp(r, name.c_str()) == 0; }))
      continue;
    if (out.find(name) != std::string::npos) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none" : out;
}

// The offer's RTX payload type for `pt` (RFC 4588: rtx/<clock> with
// apt=<pt>), or -1.
int rtx_of(const GstSDPMedia *media, int pt) {
  for (guint f = 0; f < gst_sdp_media_formats_len(media); ++f) {
    const int rtx = payload_type_of(gst_sdp_media_get_format(media, f));
    if (rtx < 0 || rtx == pt) continue;
    const auto rtpmap = sdp_values_for_pt(media, "rtpmap", rtx);
    if (rtpmap.empty() || g_ascii_strncasecmp(rtpmap.front().c_str(), "rtx/", 4) != 0) continue;
    if (fmtp_param(fmtp_of(media, rtx), "apt") == std::to_string(pt)) return rtx;
  }
  return -1;
}

// The offer's id for abs-send-time in `media` (0: none, or one a one-byte
// header cannot carry, or a direction in which we would not send it).
int abs_send_time_id_of(const GstSDPMedia *media) {
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); ++i) {
    const GstSDPAttribute *attr = gst_sdp_media_get_attribute(media, i);
    if (!attr->key || strcmp(attr->key, "extmap") != 0 || !attr->value) continue;
    char *end = nullptr;
    const long id = strtol(attr->value, &end, 10);
    if (end == attr->value || id < 1 || id > 14) continue;
    std::string rest(end);
    if (!rest.empty() && rest[0] == '/') {
      const size_t space = rest.find(' ');
      const std::string direction = rest.substr(1, space == std::string::npos ? std::string::npos : space - 1);
      if (direction != "recvonly" && direction != "sendrecv") continue;
      rest = space == std::string::npos ? "" : rest.substr(space);
    }
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    const size_t stop = rest.find(' ', start);
    if (rest.compare(start, stop == std::string::npos ? std::string::npos : stop - start, kAbsSendTimeUri) == 0)
      return int(id);
  }
  return 0;
}

}  // namespace

ParsedSdp::~ParsedSdp() {
  if (msg) gst_sdp_message_free(msg);
}

bool ParsedSdp::parse(const std::string &text) {
  if (!msg && gst_sdp_message_new(&msg) != GST_SDP_OK) return false;
  return gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(text.data()), text.size(), msg) ==
         GST_SDP_OK;
}

const char *sdp_media_or_session_attribute(const GstSDPMessage *msg, const GstSDPMedia *media, const char *key) {
  const char *v = gst_sdp_media_get_attribute_val(media, key);
  return v ? v : gst_sdp_message_get_attribute_val(msg, key);
}

std::vector<std::string> sdp_values_for_pt(const GstSDPMedia *media, const char *key, int pt) {
  std::vector<std::string> out;
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); ++i) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute(media, i);
    if (g_strcmp0(a->key, key) != 0 || !a->value) continue;
    char *end = nullptr;
    long p = strtol(a->value, &end, 10);
    if (p == pt && end && *end == ' ') out.emplace_back(end + 1);
  }
  return out;
}

OfferCheck check_offer(const std::string &sdp, const StreamFormat &video, const StreamFormat &audio,
                       Offerer offerer) {
  return check_offer(sdp, std::vector<StreamFormat>{video}, audio, offerer);
}

OfferCheck check_offer(const std::string &sdp, const std::vector<StreamFormat> &video, const StreamFormat &audio,
                       Offerer offerer) {
  const bool viewer = offerer == Offerer::Viewer;
  OfferCheck check;
  ParsedSdp msg;
  // SDP is UTF-8 (RFC 8866 5.3); GStreamer warns about any other string
  // that reaches caps (an fmtp value, say) and drops it.
  if (!g_utf8_validate(sdp.data(), gssize(sdp.size()), nullptr)) {
    check.status = 400;
    check.error = "malformed SDP: not UTF-8";
    return check;
  }
  if (sdp.empty() || !msg.parse(sdp) || gst_sdp_message_medias_len(msg.msg) == 0) {
    check.status = 400;
    check.error = "malformed SDP: not an SDP offer with media sections";
    return check;
  }
  std::string rejections;
  for (guint i = 0; i < gst_sdp_message_medias_len(msg.msg); ++i) {
    const GstSDPMedia *media = gst_sdp_message_get_media(msg.msg, i);
    MediaChoice choice;
    choice.mline = i;
    choice.kind = gst_sdp_media_get_media(media) ? gst_sdp_media_get_media(media) : "";
    const char *mid = gst_sdp_media_get_attribute_val(media, "mid");
    choice.mid = mid ? mid : "";
    auto session_or_media = [&](const char *key) { return sdp_media_or_session_attribute(msg.msg, media, key); };
    if (!session_or_media("ice-ufrag") || !session_or_media("ice-pwd") || !session_or_media("fingerprint")) {
      check.status = 400;
      check.error = "malformed SDP: m-line " + std::to_string(i) +
                    " lacks ICE credentials or a DTLS fingerprint";
      return check;
    }
    std::vector<StreamFormat> ours;
    for (const StreamFormat &f : choice.kind == "video"   ? video
                                 : choice.kind == "audio" ? std::vector<StreamFormat>{audio}
                                                          : std::vector<StreamFormat>{})
      if (f.codec != Codec::Unknown) ours.push_back(f);
    if (ours.empty()) {
      choice.reason = viewer ? "this broadcast has no " + choice.kind : "we take no " + choice.kind;
    } else if (std::any_of(check.media.begin(), check.media.end(), [&](const MediaChoice &m) {
                 return m.kind == choice.kind && m.accepted();
               })) {
      choice.reason = "only one " + choice.kind + " m-line is sent";
    } else if (gst_sdp_media_get_port(media) == 0 && !has_attr(media, "bundle-only")) {
      choice.reason = "m-line is disabled (port 0)";
    } else if (viewer && (has_attr(media, "sendonly") || has_attr(media, "inactive"))) {
      choice.reason = choice.kind + " m-line does not receive (sendonly or inactive)";
    } else if (!viewer && (has_attr(media, "recvonly") || has_attr(media, "inactive"))) {
      choice.reason = choice.kind + " m-line does not send (recvonly or inactive)";
    } else {
      // Our formats in our order (the best layers' codec first), each
      // matched to the offered payload type that fits it best.
      for (const StreamFormat &format : ours) {
        int best_score = -1;
        for (guint f = 0; f < gst_sdp_media_formats_len(media); ++f) {
          const int pt = payload_type_of(gst_sdp_media_get_format(media, f));
          if (pt < 0) continue;
          int score = score_format(media, pt, format);
          if (score > best_score) {
            best_score = score;
            choice.payload_type = pt;
          }
        }
        if (choice.accepted()) {
          choice.codec = format.codec;
          break;
        }
      }
      if (choice.accepted()) {
        choice.profile_level_id =
            fmtp_param(fmtp_of(media, choice.payload_type), "profile-level-id");
        if (choice.kind == "video") choice.rtx_payload_type = rtx_of(media, choice.payload_type);
        choice.abs_send_time_id = abs_send_time_id_of(media);
        GstCaps *caps = gst_sdp_media_get_caps_from_media(media, choice.payload_type);
        if (!caps) {
          check.status = 400;
          check.error = "malformed SDP: payload type " + std::to_string(choice.payload_type) +
                        " cannot be read";
          return check;
        }
        caps = gst_caps_make_writable(caps);
        gst_structure_set_name(gst_caps_get_structure(caps, 0), "application/x-rtp");
        choice.caps.reset(caps);
      } else {
        std::string names;
        for (const StreamFormat &format : ours)
          names += std::string(names.empty() ? "" : " or ") + codec_encoding_name(format.codec) +
                   (format.codec == Codec::H264 ? " (packetization-mode=1)" : "");
        choice.reason = std::string(viewer ? "we send " : "we take ") + names + " but the offer has " +
                        describe_offer_codecs(media);
      }
    }
    if (!choice.accepted()) {
      if (!rejections.empty()) rejections += "; ";
      rejections += choice.kind + ": " + choice.reason;
    }
    check.media.push_back(std::move(choice));
  }
  bool any = false;
  for (const auto &m : check.media) any |= m.accepted();
  if (!any) {
    check.status = 406;
    check.error = std::string(viewer ? "no codec we can send: " : "no codec we can take: ") + rejections;
  }
  return check;
}

std::string repair_answer(const std::string &answer_sdp, const OfferCheck &offer) {
  ParsedSdp msg;
  if (!msg.parse(answer_sdp)) return answer_sdp;
  for (const auto &choice : offer.media) {
    if (!choice.accepted() || choice.codec != Codec::H264) continue;
    if (choice.mline >= gst_sdp_message_medias_len(msg.msg)) continue;
    GstSDPMedia *media = const_cast<GstSDPMedia *>(gst_sdp_message_get_media(msg.msg, choice.mline));
    std::string plid = choice.profile_level_id.empty() ? "42e01f" : choice.profile_level_id;
    std::string wanted = "profile-level-id=" + plid +
                         ";packetization-mode=1;level-asymmetry-allowed=1";
    std::string value = std::to_string(choice.payload_type) + " " + wanted;
    bool found = false;
    for (guint i = 0; i < gst_sdp_media_attributes_len(media); ++i) {
      const GstSDPAttribute *a = gst_sdp_media_get_attribute(media, i);
      if (g_strcmp0(a->key, "fmtp") != 0 || !a->value) continue;
      if (atoi(a->value) != choice.payload_type) continue;
      found = true;
      std::string fmtp = fmtp_of(media, choice.payload_type);
      if (!fmtp_param(fmtp, "profile-level-id").empty() &&
          fmtp_param(fmtp, "packetization-mode") == "1")
        break;
      GstSDPAttribute replacement;
      gst_sdp_attribute_set(&replacement, "fmtp", value.c_str());
      gst_sdp_media_replace_attribute(media, i, &replacement);
      break;
    }
    if (!found) gst_sdp_media_add_attribute(media, "fmtp", value.c_str());
  }
  gchar *text = gst_sdp_message_as_text(msg.msg);
  std::string out(text);
  g_free(text);
  return out;
}

}  // namespace wb
