// The RTCP a receiving browser sends: receiver reports with SDES CNAME, and
// a picture loss indication, as one compound packet (RFC 3550 6.1, RFC 4585).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rtp.h"

namespace load {

class RtcpCompound {
 public:
  explicit RtcpCompound(uint32_t sender_ssrc) : sender_ssrc_(sender_ssrc) { buf_.reserve(256); }
  void receiver_report(const std::vector<ReceptionReport> &blocks);
  void sdes_cname(const std::string &cname);
  void pli(uint32_t media_ssrc);
  const std::vector<uint8_t> &bytes() const { return buf_; }

 private:
  size_t begin(uint8_t count, uint8_t type);
  void end(size_t start);
  void put32(uint32_t v);

  uint32_t sender_ssrc_;
  std::vector<uint8_t> buf_;
};

}  // namespace load
