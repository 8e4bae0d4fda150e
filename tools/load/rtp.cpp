#include "rtp.h"

#include <algorithm>
#include <cstdlib>

namespace load {

namespace {

uint16_t read16(const uint8_t *p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t read32(const uint8_t *p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// RFC 3550 A.1: how far a sequence number may move before it counts as a
// restart of the stream rather than loss or reordering.
constexpr uint16_t kMaxDropout = 3000;
constexpr uint16_t kMaxMisorder = 100;

}  // namespace

bool parse_rtp(const uint8_t *data, size_t len, RtpHeader *h) {
  if (len < 12 || (data[0] >> 6) != 2) return false;
  size_t size = 12 + 4 * size_t(data[0] & 0x0F);
  if (data[0] & 0x10) {  // header extension: 4-byte header, then its length in words
    if (size + 4 > len) return false;
    size += 4 + 4 * size_t(read16(data + size + 2));
  }
  if (size > len) return false;
  h->marker = data[1] & 0x80;
  h->payload_type = data[1] & 0x7F;
  h->seq = read16(data + 2);
  h->timestamp = read32(data + 4);
  h->ssrc = read32(data + 8);
  h->size = size;
  return true;
}

bool StreamStats::on_packet(const RtpHeader &h, size_t bytes, int64_t arrival_ns) {
  double arrival = double(arrival_ns) * clock_rate_ / 1e9;  // in timestamp units
  ++packets_;
  bytes_ += bytes;
  if (packets_ == 1) {
    ssrc_ = h.ssrc;
    base_seq_ = max_seq_ = h.seq;
    recent_ = 1;
    last_arrival_ = arrival;
    last_timestamp_ = h.timestamp;
    return true;
  }
  // Jitter (A.8): the change in transit time, with timestamps modulo 2^32.
  double d = (arrival - last_arrival_) - double(int32_t(h.timestamp - last_timestamp_));
  jitter_ += (std::abs(d) - jitter_) / 16.0;
  last_timestamp_ = h.timestamp;
  last_arrival_ = arrival;

  uint16_t delta = uint16_t(h.seq - uint16_t(max_seq_));
  if (delta > 0 && delta < kMaxDropout) {
    max_seq_ += delta;  // 32-bit extended: wraps of the 16-bit number count as cycles
    recent_ = (delta < 64 ? recent_ << delta : 0) | 1;
    return delta == 1;
  }
  if (delta == 0 || delta >= uint16_t(65536 - kMaxMisorder)) {  // duplicate or late
    uint16_t back = uint16_t(uint16_t(max_seq_) - h.seq);
    if (back < 64) recent_ |= uint64_t(1) << back;
    return false;
  }
  // A jump: the sender restarted its numbering. Close this run and start anew.
  expected_before_ += int64_t(max_seq_ - base_seq_) + 1;
  base_seq_ = max_seq_ = (max_seq_ & 0xFFFF0000u) | h.seq;
  recent_ = 1;
  return false;
}

bool StreamStats::is_duplicate(const RtpHeader &h) const {
  if (!packets_ || h.ssrc != ssrc_) return false;
  uint16_t back = uint16_t(uint16_t(max_seq_) - h.seq);
  return back < 64 && (recent_ >> back) & 1;
}

int64_t StreamStats::expected() const {
  return packets_ ? expected_before_ + int64_t(max_seq_ - base_seq_) + 1 : 0;
}

int64_t StreamStats::lost() const { return std::max<int64_t>(0, expected() - int64_t(packets_)); }

ReceptionReport StreamStats::report() {
  int64_t expected_now = expected();
  int64_t expected_interval = expected_now - expected_prior_;
  int64_t lost_interval = expected_interval - int64_t(packets_ - received_prior_);
  expected_prior_ = expected_now;
  received_prior_ = packets_;
  ReceptionReport r;
  r.ssrc = ssrc_;
  r.fraction_lost = expected_interval <= 0 || lost_interval <= 0 ? 0 : uint8_t((lost_interval << 8) / expected_interval);
  r.cumulative_lost = int32_t(std::clamp<int64_t>(expected_now - int64_t(packets_), -(1 << 23), (1 << 23) - 1));
  r.highest_seq = max_seq_;
  r.jitter = uint32_t(jitter_);
  return r;
}

void H264KeyframeSearch::on_header(const RtpHeader &h, bool in_sequence) {
  if (state_ == State::Found) return;
  // An access unit starts after a marker or where the timestamp changes, and
  // we only know that when nothing is missing in between.
  bool starts_unit = !started_ || (in_sequence && (last_marker_ || h.timestamp != last_timestamp_));
  started_ = true;
  last_marker_ = h.marker;
  last_timestamp_ = h.timestamp;
  if (starts_unit)
    state_ = State::Classifying;
  else if (!in_sequence)
    state_ = State::Waiting;  // a gap breaks whatever we were following
}

void H264KeyframeSearch::on_payload(const uint8_t *payload, size_t len) {
  // One NAL type decides: an IDR slice (5) makes this a keyframe (a decodable
  // one only after SPS and PPS), any other slice (1-4) makes it not one;
  // parameter sets, SEI and the like do not tell.
  auto decide = [this](uint8_t type) {
    have_sps_ |= type == 7;
    have_pps_ |= type == 8;
    if (type == 5)
      state_ = have_sps_ && have_pps_ ? State::Collecting : State::Waiting;
    else if (type >= 1 && type <= 4)
      state_ = State::Waiting;
    return state_ != State::Classifying;
  };
  if (len < 1) {
    state_ = State::Waiting;
    return;
  }
  uint8_t type = payload[0] & 0x1F;
  if (type == 24) {  // STAP-A: 16-bit size, NAL, repeated
    for (size_t at = 1; at + 3 <= len; at += 2 + read16(payload + at))
      if (decide(payload[at + 2] & 0x1F)) return;
  } else if (type == 28) {  // FU-A: the fragmented NAL's type is in the FU header
    if (len < 2) return;
    bool first_fragment = payload[1] & 0x80;
    uint8_t inner = payload[1] & 0x1F;
    if (inner >= 1 && inner <= 5 && !first_fragment)
      state_ = State::Waiting;  // the slice began in a packet we did not classify
    else
      decide(inner);
  } else {
    decide(type);
  }
}

bool H264KeyframeSearch::completes_keyframe(const RtpHeader &h) {
  if (state_ != State::Collecting || !h.marker) return false;
  state_ = State::Found;
  return true;
}

}  // namespace load
