// RTCP (gst/transport/rtcp.*): a viewer's compound packets, once SRTCP has
// authenticated them; still what the viewer chose to send.
//
// First byte even: the rest is a compound, parsed into the one Feedback the
// transport keeps reusing, and its report blocks fed to the round-trip
// arithmetic. Odd: a compound written by our own builder from fuzzed fields
// must parse back to what was written.
#include "fuzz.h"
#include "transport/rtcp.h"

namespace {

using namespace wb::rtcp;

Feedback feedback;  // reused across inputs, as LiteTransport reuses its own

void read_compound(fuzz::Input &in) {
  const uint64_t arrival_ntp = uint64_t(in.u32()) << 32 | in.u32();
  std::string packet = in.rest();
  bool ok = parse(reinterpret_cast<const uint8_t *>(packet.data()), packet.size(), &feedback);
  if (!ok) {
    FUZZ_CHECK(feedback.pli.empty() && feedback.fir.empty() && feedback.nacks.empty() && feedback.reports.empty() &&
               feedback.remb_bitrate == 0 && feedback.remb_ssrcs.empty());
    return;
  }
  // A REMB's SSRCs are within its packet.
  FUZZ_CHECK(feedback.remb_ssrcs.size() <= packet.size() / 4);
  // Each PID names at least one packet; a packet holds at most 31 blocks.
  for (const auto &nack : feedback.nacks) FUZZ_CHECK(!nack.seqs.empty() && nack.seqs.size() <= 17 * packet.size() / 4);
  FUZZ_CHECK(feedback.reports.size() <= packet.size() / 24);
  Reception reception;
  for (const auto &r : feedback.reports) reception.add(r.block, arrival_ntp);
  FUZZ_CHECK(reception.rtt >= -1 && reception.rtt <= INT32_MAX);
}

ReportBlock block_from(fuzz::Input &in) {
  ReportBlock b;
  b.ssrc = in.u32();
  b.fraction_lost = in.u8();
  // 24 bits, signed, on the wire.
  b.cumulative_lost = int32_t(in.u32() << 8) >> 8;
  b.highest_seq = in.u32();
  b.jitter = in.u32();
  b.lsr = in.u32();
  b.dlsr = in.u32();
  return b;
}

void round_trip(fuzz::Input &in) {
  Compound compound(in.u32());
  const uint8_t parts = in.u8();
  if (parts & 1) compound.sender_report(uint64_t(in.u32()) << 32 | in.u32(), in.u32(), in.u32(), in.u32());
  std::vector<ReportBlock> blocks(in.u8() % 80);
  for (auto &b : blocks) b = block_from(in);
  if (parts & 2 || !blocks.empty()) compound.receiver_report(blocks);
  if (parts & 4) {
    std::vector<uint8_t> cname = in.bytes(in.u16() % 400);
    compound.sdes_cname(std::string(cname.begin(), cname.end()));
  }
  const uint32_t media = in.u32();
  if (parts & 8) compound.pli(media);
  if (compound.bytes().empty()) return;

  FUZZ_CHECK(parse(compound.bytes().data(), compound.bytes().size(), &feedback));
  FUZZ_CHECK(feedback.reports.size() == blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    const ReportBlock &got = feedback.reports[i].block;
    const ReportBlock &want = blocks[i];
    FUZZ_CHECK(got.ssrc == want.ssrc && got.fraction_lost == want.fraction_lost &&
               got.cumulative_lost == want.cumulative_lost && got.highest_seq == want.highest_seq &&
               got.jitter == want.jitter && got.lsr == want.lsr && got.dlsr == want.dlsr);
  }
  FUZZ_CHECK(feedback.pli.size() == (parts & 8 ? 1u : 0u));
  if (parts & 8) FUZZ_CHECK(feedback.pli[0] == media);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  fuzz::Input in(data + 1, size - 1);
  if (data[0] % 2 == 0) read_compound(in);
  else round_trip(in);
  return 0;
}
