#include "rtpcodec.h"

#include <glib.h>

namespace wb {

Codec codec_from_encoding_name(const std::string &name) {
  if (g_ascii_strcasecmp(name.c_str(), "H264") == 0) return Codec::H264;
  if (g_ascii_strcasecmp(name.c_str(), "VP8") == 0) return Codec::VP8;
  if (g_ascii_strcasecmp(name.c_str(), "VP9") == 0) return Codec::VP9;
  if (g_ascii_strcasecmp(name.c_str(), "OPUS") == 0) return Codec::Opus;
  return Codec::Unknown;
}

const char *codec_encoding_name(Codec codec) {
  switch (codec) {
    case Codec::H264: return "H264";
    case Codec::VP8: return "VP8";
    case Codec::VP9: return "VP9";
    case Codec::Opus: return "OPUS";
    case Codec::Unknown: break;
  }
  return "";
}

bool codec_is_video(Codec codec) {
  return codec == Codec::H264 || codec == Codec::VP8 || codec == Codec::VP9;
}

namespace {

bool h264_nal_is_key(uint8_t nal_type) { return nal_type == 7 || nal_type == 5; }

// RFC 6184: single NAL unit, STAP-A (24) and FU-A (28) carry what matters here.
bool h264_starts_keyframe(const uint8_t *p, size_t size) {
  if (size < 1) return false;
  uint8_t type = p[0] & 0x1f;
  if (type >= 1 && type <= 23) return h264_nal_is_key(type);
  if (type == 24) {
    size_t off = 1;
    while (off + 2 < size) {
      size_t nalu_size = (size_t(p[off]) << 8) | p[off + 1];
      off += 2;
      if (nalu_size == 0 || off + nalu_size > size) return false;
      if (h264_nal_is_key(p[off] & 0x1f)) return true;
      off += nalu_size;
    }
    return false;
  }
  if (type == 28 && size >= 2) {
    bool start = p[1] & 0x80;
    return start && h264_nal_is_key(p[1] & 0x1f);
  }
  return false;
}

// RFC 7741: payload descriptor, then (on the first packet of a partition
// with S=1 and PID=0) the VP8 frame header whose low bit P is 0 for key frames.
bool vp8_starts_keyframe(const uint8_t *p, size_t size) {
  if (size < 1) return false;
  size_t off = 1;
  bool extended = p[0] & 0x80;
  bool start = p[0] & 0x10;
  uint8_t pid = p[0] & 0x07;
  if (!start || pid != 0) return false;
  if (extended) {
    if (size < 2) return false;
    uint8_t x = p[1];
    off = 2;
    if (x & 0x80) {  // I: picture id
      if (off >= size) return false;
      off += (p[off] & 0x80) ? 2 : 1;
    }
    if (x & 0x40) off += 1;           // L: TL0PICIDX
    if (x & 0x30) off += 1;           // T or K: TID/Y/KEYIDX
  }
  if (off >= size) return false;
  return (p[off] & 0x01) == 0;
}

// draft-ietf-payload-vp9: B (begin of frame) set and P (inter-picture
// predicted) clear marks the start of a key frame.
bool vp9_starts_keyframe(const uint8_t *p, size_t size) {
  if (size < 1) return false;
  bool inter_predicted = p[0] & 0x40;
  bool begins_frame = p[0] & 0x08;
  return begins_frame && !inter_predicted;
}

}  // namespace

bool rtp_payload_starts_keyframe(Codec codec, const uint8_t *payload, size_t size) {
  switch (codec) {
    case Codec::H264: return h264_starts_keyframe(payload, size);
    case Codec::VP8: return vp8_starts_keyframe(payload, size);
    case Codec::VP9: return vp9_starts_keyframe(payload, size);
    case Codec::Opus: return true;
    case Codec::Unknown: break;
  }
  return false;
}

}  // namespace wb
