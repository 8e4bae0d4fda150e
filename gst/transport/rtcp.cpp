#include "rtcp.h"

#include <algorithm>
#include <cstring>

namespace wb::rtcp {

namespace {

constexpr uint8_t kSenderReport = 200;
constexpr uint8_t kReceiverReport = 201;
constexpr uint8_t kSourceDescription = 202;
constexpr uint8_t kTransportFeedback = 205;  // RTPFB
constexpr uint8_t kPayloadFeedback = 206;    // PSFB
constexpr uint8_t kCname = 1;
constexpr uint8_t kNackFormat = 1;  // RTPFB
constexpr uint8_t kPliFormat = 1;   // PSFB
constexpr uint8_t kFirFormat = 4;   // PSFB
constexpr uint8_t kAppFormat = 15;  // PSFB: application layer feedback, e.g. REMB
constexpr size_t kMaxCount = 31;    // the 5-bit count field
constexpr size_t kReportBlockSize = 24;
constexpr size_t kSenderInfoEnd = 28;     // header, SSRC, NTP, RTP time, counts
constexpr size_t kReceiverInfoEnd = 8;    // header, SSRC
constexpr size_t kFeedbackHeaderEnd = 12;  // header, sender SSRC, media SSRC
constexpr int64_t kNtpUnixOffset = 2208988800;  // seconds from 1900 to 1970

uint32_t read32(const uint8_t *p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint16_t read16(const uint8_t *p) { return uint16_t(p[0] << 8 | p[1]); }

// The `count` report blocks from `first` on, in a packet whose content ends at `end`.
bool read_reports(const uint8_t *p, size_t end, size_t first, size_t count, Feedback *out) {
  if (end < first + count * kReportBlockSize) return false;
  uint32_t reporter = read32(p + 4);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t *b = p + first + i * kReportBlockSize;
    ReportBlock block;
    block.ssrc = read32(b);
    block.fraction_lost = b[4];
    uint32_t lost = read32(b + 4) & 0xFFFFFF;
    block.cumulative_lost = lost & 0x800000 ? int32_t(lost) - 0x1000000 : int32_t(lost);
    block.highest_seq = read32(b + 8);
    block.jitter = read32(b + 12);
    block.lsr = read32(b + 16);
    block.dlsr = read32(b + 20);
    out->reports.push_back({reporter, block});
  }
  return true;
}

// RFC 4585 6.2.1: each FCI entry is a lost packet and a bitmask of the 16
// after it.
bool read_nack(const uint8_t *p, size_t end, Feedback *out) {
  if (end < kFeedbackHeaderEnd + 4) return false;
  Feedback::Nack nack{read32(p + 8), {}};
  for (size_t at = kFeedbackHeaderEnd; at + 4 <= end; at += 4) {
    uint16_t pid = read16(p + at);
    uint16_t blp = read16(p + at + 2);
    nack.seqs.push_back(pid);
    for (int i = 0; i < 16; ++i)
      if (blp >> i & 1) nack.seqs.push_back(uint16_t(pid + i + 1));
  }
  out->nacks.push_back(std::move(nack));
  return true;
}

// RFC 5104 4.3.1.1: the media SSRC of the common header is unused; each
// 8-byte FCI entry names one.
bool read_fir(const uint8_t *p, size_t end, Feedback *out) {
  if (end < kFeedbackHeaderEnd + 8) return false;
  for (size_t at = kFeedbackHeaderEnd; at + 8 <= end; at += 8) out->fir.push_back(read32(p + at));
  return true;
}

// draft-alvestrand-rmcat-remb: "REMB", a count of SSRCs, a 6-bit exponent
// and an 18-bit mantissa, then the SSRCs it is about. Other application
// feedback is skipped; a REMB too short for its SSRCs is malformed.
bool read_remb(const uint8_t *p, size_t end, Feedback *out) {
  if (end < kFeedbackHeaderEnd + 8 || memcmp(p + kFeedbackHeaderEnd, "REMB", 4) != 0) return true;
  const uint8_t *fci = p + kFeedbackHeaderEnd + 4;
  const size_t ssrcs = fci[0];
  if (end < kFeedbackHeaderEnd + 8 + 4 * ssrcs) return false;
  const unsigned exponent = fci[1] >> 2;
  const uint64_t mantissa = uint64_t(fci[1] & 0x03) << 16 | uint64_t(fci[2]) << 8 | fci[3];
  // 2^18 << 63 would not fit: such an estimate is "unlimited" anyway.
  out->remb_bitrate = exponent > 45 ? UINT64_MAX : mantissa << exponent;
  out->remb_ssrcs.clear();
  for (size_t i = 0; i < ssrcs; ++i) out->remb_ssrcs.push_back(read32(fci + 4 + 4 * i));
  return true;
}

bool read_compound(const uint8_t *data, size_t len, Feedback *out) {
  if (len == 0) return false;
  for (size_t at = 0; at < len;) {
    if (len - at < 4) return false;
    const uint8_t *p = data + at;
    if (p[0] >> 6 != 2) return false;
    size_t size = (size_t(read16(p + 2)) + 1) * 4;
    if (size > len - at) return false;
    size_t end = size;
    if (p[0] & 0x20) {
      uint8_t padding = p[size - 1];
      if (padding == 0 || padding > size - 4) return false;
      end -= padding;
    }
    uint8_t count = p[0] & 0x1F;
    bool ok = true;
    switch (p[1]) {
      case kSenderReport: ok = read_reports(p, end, kSenderInfoEnd, count, out); break;
      case kReceiverReport: ok = read_reports(p, end, kReceiverInfoEnd, count, out); break;
      case kTransportFeedback:
        if (count == kNackFormat) ok = read_nack(p, end, out);
        break;
      case kPayloadFeedback:
        if (count == kPliFormat) {
          ok = end >= kFeedbackHeaderEnd;
          if (ok) out->pli.push_back(read32(p + 8));
        } else if (count == kFirFormat) {
          ok = read_fir(p, end, out);
        } else if (count == kAppFormat) {
          ok = read_remb(p, end, out);
        }
        break;
      default: break;
    }
    if (!ok) return false;
    at += size;
  }
  return true;
}

void clear(Feedback *out) {
  out->pli.clear();
  out->fir.clear();
  out->nacks.clear();
  out->reports.clear();
  out->remb_bitrate = 0;
  out->remb_ssrcs.clear();
}

}  // namespace

void Compound::put32(uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) buf_.push_back(uint8_t(v >> shift));
}

size_t Compound::begin(uint8_t count, uint8_t type) {
  size_t start = buf_.size();
  buf_.push_back(uint8_t(0x80 | count));  // version 2, no padding
  buf_.push_back(type);
  buf_.push_back(0);  // length, filled in by end()
  buf_.push_back(0);
  return start;
}

void Compound::end(size_t start) {
  while ((buf_.size() - start) % 4) buf_.push_back(0);
  size_t words = (buf_.size() - start) / 4 - 1;
  buf_[start + 2] = uint8_t(words >> 8);
  buf_[start + 3] = uint8_t(words);
}

void Compound::sender_report(uint64_t ntp_time, uint32_t rtp_time, uint32_t packet_count, uint32_t octet_count) {
  size_t start = begin(0, kSenderReport);
  put32(sender_ssrc_);
  put32(uint32_t(ntp_time >> 32));
  put32(uint32_t(ntp_time));
  put32(rtp_time);
  put32(packet_count);
  put32(octet_count);
  end(start);
}

void Compound::receiver_report(const std::vector<ReportBlock> &blocks) {
  size_t done = 0;
  do {
    size_t count = std::min(kMaxCount, blocks.size() - done);
    size_t start = begin(uint8_t(count), kReceiverReport);
    put32(sender_ssrc_);
    for (size_t i = done; i < done + count; ++i) {
      const ReportBlock &b = blocks[i];
      put32(b.ssrc);
      put32(uint32_t(b.fraction_lost) << 24 | (uint32_t(b.cumulative_lost) & 0xFFFFFF));
      put32(b.highest_seq);
      put32(b.jitter);
      put32(b.lsr);
      put32(b.dlsr);
    }
    end(start);
    done += count;
  } while (done < blocks.size());
}

void Compound::sdes_cname(const std::string &cname) {
  size_t length = std::min<size_t>(cname.size(), 255);
  size_t start = begin(1, kSourceDescription);
  put32(sender_ssrc_);
  buf_.push_back(kCname);
  buf_.push_back(uint8_t(length));
  buf_.insert(buf_.end(), cname.begin(), cname.begin() + length);
  buf_.push_back(0);  // end of the item list; end() pads to 32 bits
  end(start);
}

void Compound::pli(uint32_t media_ssrc) {
  size_t start = begin(kPliFormat, kPayloadFeedback);
  put32(sender_ssrc_);
  put32(media_ssrc);
  end(start);
}

uint64_t ntp_from_unix_us(int64_t unix_us) {
  int64_t seconds = unix_us / 1000000;
  int64_t micros = unix_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --seconds;
  }
  // The seconds wrap in 2036, as NTP's era 0 ends; receivers expect that.
  uint64_t ntp_seconds = uint64_t(seconds + kNtpUnixOffset) & 0xFFFFFFFF;
  return ntp_seconds << 32 | (uint64_t(micros) << 32) / 1000000;
}

int64_t round_trip(const ReportBlock &block, uint64_t arrival_ntp) {
  if (block.lsr == 0) return -1;
  // Modulo 2^32 like the fields themselves, so the middle 32 bits wrapping
  // (every 18 hours) between our report and its echo costs nothing; a
  // difference past half the range is a negative one.
  const uint32_t rtt = uint32_t(arrival_ntp >> 16) - block.lsr - block.dlsr;
  return rtt & 0x80000000u ? -1 : int64_t(rtt);
}

void Reception::add(const ReportBlock &block, uint64_t arrival_ntp) {
  ++reports;
  latest = block;
  const int64_t measured = round_trip(block, arrival_ntp);
  if (measured >= 0) rtt = measured;
}

bool parse(const uint8_t *data, size_t len, Feedback *out) {
  clear(out);
  if (read_compound(data, len, out)) return true;
  clear(out);
  return false;
}

}  // namespace wb::rtcp
