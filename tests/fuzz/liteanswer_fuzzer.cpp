// The ICE-lite answer (gst/viewer/liteanswer.*): from a viewer's offer we
// read its fingerprint, DTLS role and bundling, and write the answer
// ourselves, copying the offer's mids, rtpmap, fmtp and rtcp-fb values
// into it. The answer goes back to that viewer only, but it must stay SDP:
// nothing from the offer may start a line of its own.
//
// First byte: what the broadcast sends (bits 0-1 the video codec, 2 Opus
// or no audio); the rest is the offer, checked as audience.cpp checks it.
#include "fuzz.h"
#include "gstfuzz.h"
#include "viewer/liteanswer.h"

namespace {

using namespace wb;

const Codec kVideo[] = {Codec::Unknown, Codec::H264, Codec::VP8, Codec::VP9};

void check_lines(const std::string &answer) {
  FUZZ_CHECK(answer.size() >= 2 && answer.compare(answer.size() - 2, 2, "\r\n") == 0);
  for (size_t at = 0; at < answer.size();) {
    size_t end = answer.find("\r\n", at);
    FUZZ_CHECK(end != std::string::npos);
    const std::string line = answer.substr(at, end - at);
    FUZZ_CHECK(line.size() >= 2 && line[0] >= 'a' && line[0] <= 'z' && line[1] == '=');
    FUZZ_CHECK(line.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
    at = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::init_gstreamer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const std::string offer(reinterpret_cast<const char *>(data + 1), size - 1);
  const StreamFormat video{kVideo[data[0] & 3], "42e01f"};
  const StreamFormat audio{data[0] & 4 ? Codec::Opus : Codec::Unknown, ""};
  OfferCheck check = check_offer(offer, video, audio);
  if (check.status != 0) return 0;

  LiteOffer lite = read_lite_offer(offer, check);
  if (!lite.problem.empty()) return 0;

  LiteAnswerParams params;
  params.ice_ufrag = "uFrg";
  params.ice_pwd = "0123456789abcdefghijklmn";
  params.fingerprint = "11:22:33";
  params.dtls_server = lite.we_are_dtls_server;
  params.candidates = {{"192.0.2.1", 40000}, {"127.0.0.1", 40000}};
  params.cname = "cname";
  for (size_t i = 0; i < check.media.size(); ++i) params.ssrcs.push_back(uint32_t(0x10000 + i));
  std::string answer = write_lite_answer(offer, check, params);
  FUZZ_CHECK(!answer.empty());
  check_lines(answer);

  ParsedSdp parsed;
  FUZZ_CHECK(parsed.parse(answer));
  FUZZ_CHECK(gst_sdp_message_medias_len(parsed.msg) == check.media.size());
  for (const auto &m : check.media) {
    const GstSDPMedia *media = gst_sdp_message_get_media(parsed.msg, m.mline);
    // A refused section has port 0, except the first of the offer's BUNDLE
    // group, which webrtcbin 1.22 needs kept in the group: then inactive.
    const bool open = gst_sdp_media_get_port(media) != 0;
    FUZZ_CHECK(!m.accepted() || open);
    FUZZ_CHECK(m.accepted() || !open || gst_sdp_media_get_attribute_val(media, "inactive") != nullptr);
  }
  return 0;
}
