// RTCP compound packets (RFC 3550 6.1) with the feedback of RFC 4585 and
// RFC 5104: a builder for what a sender or a receiver sends, and a parser
// for what a media sender has to act on. Plain packets: SRTCP is
// SrtcpContext's job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wb::rtcp {

// One report block of an SR or RR (RFC 3550 6.4.1).
struct ReportBlock {
  uint32_t ssrc = 0;
  uint8_t fraction_lost = 0;
  int32_t cumulative_lost = 0;  // 24 bits on the wire, signed
  uint32_t highest_seq = 0;     // extended
  uint32_t jitter = 0;          // timestamp units
  uint32_t lsr = 0;             // 0: no sender report received yet
  uint32_t dlsr = 0;
};

// One compound packet, built by appending its parts in order.
class Compound {
 public:
  using ReportBlock = rtcp::ReportBlock;

  explicit Compound(uint32_t sender_ssrc) : sender_ssrc_(sender_ssrc) { buf_.reserve(256); }
  // An SR with no report blocks. `ntp_time`: see ntp_from_unix_us().
  void sender_report(uint64_t ntp_time, uint32_t rtp_time, uint32_t packet_count, uint32_t octet_count);
  // More than 31 blocks go on in further RRs (RFC 3550 6.4).
  void receiver_report(const std::vector<ReportBlock> &blocks);
  // At most 255 bytes of `cname` fit an SDES item; the rest is cut.
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

// The 64-bit NTP timestamp (seconds since 1900 << 32 | fraction) of a time
// in microseconds since 1970.
uint64_t ntp_from_unix_us(int64_t unix_us);

// RFC 3550 6.4.1: the round trip a report block about one of our streams
// measures, in 1/65536 s: the middle 32 bits of `arrival_ntp` (the NTP time
// the block arrived, on the clock our sender reports use) less LSR less
// DLSR. -1 when the block has no LSR (no sender report of ours had reached
// the receiver yet) or when the result is negative, which a block echoing
// one of our reports cannot give.
int64_t round_trip(const ReportBlock &block, uint64_t arrival_ntp);

// What the receiver of one of our streams has told us about it.
struct Reception {
  uint32_t reports = 0;  // blocks received about the stream
  ReportBlock latest;    // the last to arrive
  int64_t rtt = -1;      // the last round trip measured (see round_trip()); -1: none yet
  // A block about the stream, arrived at `arrival_ntp`. A block without LSR
  // keeps the round trip measured before.
  void add(const ReportBlock &block, uint64_t arrival_ntp);
};

// What a media sender must act on in the compound packets it receives.
struct Feedback {
  std::vector<uint32_t> pli;  // media SSRCs asking for a picture (PSFB fmt 1)
  // Media SSRCs of FIR entries (PSFB fmt 4). RFC 5104 4.3.1.2: a request
  // repeated with the same sequence number is the same request, but the
  // numbers are not kept here.
  std::vector<uint32_t> fir;
  struct Nack {
    uint32_t media_ssrc;
    std::vector<uint16_t> seqs;  // each PID followed by those its BLP marks
  };
  std::vector<Nack> nacks;  // RTPFB fmt 1, one per NACK packet
  struct Report {
    uint32_t reporter_ssrc;
    ReportBlock block;
  };
  std::vector<Report> reports;  // the blocks of SRs and RRs
  // The receiver's estimate of what its network carries, bits per second
  // (REMB, PSFB fmt 15; 0: none in this compound), and the SSRCs it covers.
  uint64_t remb_bitrate = 0;
  std::vector<uint32_t> remb_ssrcs;
};

// Replaces `*out` (keeping its vectors' capacity) with what the compound
// packet `data` asks for. False, with `*out` empty, when it is not a
// well-formed compound: no packet, a version other than 2, a length or
// padding running past the end, or SR, RR, PLI, FIR or NACK too short for
// what they announce, or a REMB too short for its SSRCs. Other packet types
// (SDES, BYE, APP, XR, transport-cc, other application feedback) are
// skipped. A compound need not start with an SR
// or RR: reduced-size RTCP (RFC 5506) sends feedback alone.
bool parse(const uint8_t *data, size_t len, Feedback *out);

}  // namespace wb::rtcp
