// What the fan-out needs to know about an RTP stream's codec, decided once
// per stream from its caps, and the per-packet checks that depend on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace wb {

enum class Codec { Unknown, H264, VP8, VP9, Opus };

Codec codec_from_encoding_name(const std::string &encoding_name);
const char *codec_encoding_name(Codec codec);
bool codec_is_video(Codec codec);

// True when this RTP payload begins a frame a decoder can start from
// (H.264: SPS or IDR start; VP8/VP9: start of a key frame). A viewer's
// keyframe gate opens on the first such packet.
bool rtp_payload_starts_keyframe(Codec codec, const uint8_t *payload, size_t size);

}  // namespace wb
