// Offer checks (gst/viewer/offer.*): every POST /whep (and a WHIP ingest's
// POST) brings an SDP offer that check_offer() reads before anything else
// does, and whose choices decide payload types, caps and the answer.
//
// First byte: what the broadcast sends (bits 0-1 the video codec, 2 Opus
// or no audio, 4-5 the H.264 profile) and who offers (bit 3: a WHIP
// publisher); the rest is the offer. The same text also goes through
// repair_answer(), as webrtcbin's answers to such offers do.
#include "fuzz.h"
#include "gstfuzz.h"
#include "viewer/offer.h"

namespace {

using namespace wb;

const Codec kVideo[] = {Codec::Unknown, Codec::H264, Codec::VP8, Codec::VP9};
const char *const kProfiles[] = {"42e01f", "640028", "", "4d001f"};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::init_gstreamer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string sdp(reinterpret_cast<const char *>(data + 1), size - 1);
  const StreamFormat video{kVideo[flags & 3], kProfiles[flags >> 4 & 3]};
  const StreamFormat audio{flags & 4 ? Codec::Opus : Codec::Unknown, ""};
  const Offerer offerer = flags & 8 ? Offerer::Publisher : Offerer::Viewer;

  OfferCheck check = check_offer(sdp, video, audio, offerer);
  FUZZ_CHECK(check.status == 0 || check.status == 400 || check.status == 406);
  FUZZ_CHECK((check.status == 0) == check.error.empty());
  if (check.status == 400) return 0;
  bool any = false;
  for (const auto &m : check.media) {
    if (!m.accepted()) {
      FUZZ_CHECK(!m.reason.empty() && !m.caps);
      continue;
    }
    any = true;
    const StreamFormat &ours = m.kind == "video" ? video : audio;
    FUZZ_CHECK(m.codec == ours.codec && m.codec != Codec::Unknown);
    // RTP has seven bits for it; the fan-out writes it into every header.
    FUZZ_CHECK(m.payload_type >= 0 && m.payload_type <= 127);
    FUZZ_CHECK(m.caps && gst_caps_get_size(m.caps.get()) == 1);
  }
  FUZZ_CHECK(any == (check.status == 0));

  std::string repaired = repair_answer(sdp, check);
  ParsedSdp reparsed;
  FUZZ_CHECK(reparsed.parse(repaired));
  return 0;
}
