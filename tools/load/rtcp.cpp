#include "rtcp.h"

namespace load {

namespace {
constexpr uint8_t kReceiverReport = 201;
constexpr uint8_t kSourceDescription = 202;
constexpr uint8_t kPayloadFeedback = 206;
constexpr uint8_t kCname = 1;
constexpr uint8_t kPliFormat = 1;
}  // namespace

void RtcpCompound::put32(uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) buf_.push_back(uint8_t(v >> shift));
}

size_t RtcpCompound::begin(uint8_t count, uint8_t type) {
  size_t start = buf_.size();
  buf_.push_back(uint8_t(0x80 | count));  // version 2, no padding
  buf_.push_back(type);
  buf_.push_back(0);  // length, filled in by end()
  buf_.push_back(0);
  return start;
}

void RtcpCompound::end(size_t start) {
  while ((buf_.size() - start) % 4) buf_.push_back(0);
  size_t words = (buf_.size() - start) / 4 - 1;
  buf_[start + 2] = uint8_t(words >> 8);
  buf_[start + 3] = uint8_t(words);
}

void RtcpCompound::receiver_report(const std::vector<ReceptionReport> &blocks) {
  size_t start = begin(uint8_t(blocks.size()), kReceiverReport);
  put32(sender_ssrc_);
  for (const auto &b : blocks) {
    put32(b.ssrc);
    put32(uint32_t(b.fraction_lost) << 24 | (uint32_t(b.cumulative_lost) & 0xFFFFFF));
    put32(b.highest_seq);
    put32(b.jitter);
    put32(0);  // LSR: the server's sender reports are encrypted; 0 means "none seen"
    put32(0);  // DLSR
  }
  end(start);
}

void RtcpCompound::sdes_cname(const std::string &cname) {
  size_t start = begin(1, kSourceDescription);
  put32(sender_ssrc_);
  buf_.push_back(kCname);
  buf_.push_back(uint8_t(cname.size()));
  buf_.insert(buf_.end(), cname.begin(), cname.end());
  buf_.push_back(0);  // end of the item list; end() pads to 32 bits
  end(start);
}

void RtcpCompound::pli(uint32_t media_ssrc) {
  size_t start = begin(kPliFormat, kPayloadFeedback);
  put32(sender_ssrc_);
  put32(media_ssrc);
  end(start);
}

}  // namespace load
