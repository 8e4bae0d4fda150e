// What a receiver learns from RTP headers, which SRTP leaves in the clear:
// counts, losses from sequence gaps, interarrival jitter. And the one thing
// that needs the (decrypted) payload: where the first H.264 keyframe is.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/rtcp.h"

namespace load {

// RFC 7983: RTP and RTCP start with 128-191; RTCP packet types put 192-223 in
// the second byte, where RTP has the marker bit and payload type.
inline bool looks_like_rtp(const uint8_t *data, size_t len) { return len >= 12 && data[0] >= 128 && data[0] <= 191; }
inline bool is_rtcp(const uint8_t *data) { return data[1] >= 192 && data[1] <= 223; }

struct RtpHeader {
  bool marker;
  uint8_t payload_type;
  uint16_t seq;
  uint32_t timestamp;
  uint32_t ssrc;
  size_t size;  // fixed header + CSRCs + extension: where the payload starts
};

// False when the packet is too short for what its header announces.
bool parse_rtp(const uint8_t *data, size_t len, RtpHeader *header);

// One report block's worth of reception statistics (RFC 3550 6.4.1, A.1,
// A.3, A.8). LSR and DLSR stay 0, "no sender report seen": the server's
// sender reports are encrypted and we do not decrypt them.
using ReceptionReport = wb::rtcp::ReportBlock;

class StreamStats {
 public:
  explicit StreamStats(uint32_t clock_rate) : clock_rate_(clock_rate) {}
  // Returns whether the packet directly follows the previous one (no gap,
  // no reordering), which the keyframe search needs to know.
  bool on_packet(const RtpHeader &h, size_t bytes, int64_t arrival_ns);
  // A packet already received (among the last 64): a receiver's SRTP replay
  // check drops it before anything counts it, and so do we.
  bool is_duplicate(const RtpHeader &h) const;

  bool started() const { return packets_ > 0; }
  uint64_t packets() const { return packets_; }
  uint64_t bytes() const { return bytes_; }
  uint32_t ssrc() const { return ssrc_; }
  // Extended (32-bit, counting wraps) number of the highest packet so far.
  uint32_t highest_seq() const { return max_seq_; }
  // Packets the sequence numbers say were sent, and of those never received.
  int64_t expected() const;
  int64_t lost() const;
  double jitter_ms() const { return jitter_ / clock_rate_ * 1000.0; }
  // The block for our next receiver report; fraction lost since the last one.
  ReceptionReport report();

 private:
  uint32_t clock_rate_;
  uint32_t ssrc_ = 0;
  uint64_t packets_ = 0;
  uint64_t bytes_ = 0;
  uint32_t base_seq_ = 0;        // first extended sequence number of this run
  uint32_t max_seq_ = 0;         // highest extended sequence number
  uint64_t recent_ = 0;          // bit n: max_seq_ - n was received
  int64_t expected_before_ = 0;  // from earlier runs (a sender that jumped)
  double jitter_ = 0;
  double last_arrival_ = 0;
  uint32_t last_timestamp_ = 0;
  int64_t expected_prior_ = 0;
  uint64_t received_prior_ = 0;
};

// Finds the first decodable H.264 keyframe: the first packet of an access
// unit with an IDR slice, through the packet with the marker bit, with no
// sequence gap, once an SPS and a PPS have been seen (a decoder cannot start
// without them; senders with config-interval=-1 put them in every IDR's
// access unit, where the search sees them). The NAL types are in the
// encrypted payload, so the viewer
// decrypts the head of a packet only when wants_payload() says so: the first
// packets of each access unit until one turns out to be IDR (or not).
class H264KeyframeSearch {
 public:
  // Call for each video packet before looking at its payload.
  // `in_sequence`: StreamStats::on_packet's answer.
  void on_header(const RtpHeader &h, bool in_sequence);
  bool wants_payload() const { return state_ == State::Classifying; }
  // The decrypted start of the payload (at least the first NAL headers).
  void on_payload(const uint8_t *payload, size_t len);
  // Call after on_header (and on_payload, if wanted). True once, when the
  // packet that completes the first keyframe has been seen.
  bool completes_keyframe(const RtpHeader &h);

 private:
  enum class State { Waiting, Classifying, Collecting, Found };
  State state_ = State::Classifying;  // the very first packet may start an access unit
  bool have_sps_ = false;
  bool have_pps_ = false;
  bool started_ = false;
  bool last_marker_ = false;
  uint32_t last_timestamp_ = 0;
};

}  // namespace load
