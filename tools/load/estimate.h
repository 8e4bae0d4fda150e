// What a generated viewer tells the server its network carries (REMB), so
// that a server choosing layers from receivers' feedback sees thin links
// as browsers would report them.
//
// An emulation, not Google congestion control: libwebrtc's receive-side
// estimator follows the growth of packet delays (overuse), this one only
// what arrives and what goes missing in each report interval. What it keeps
// of libwebrtc is the shape a sender sees: a receiver that gets everything
// says it could take about 1.5 times what arrives (libwebrtc caps its
// estimate there, so a sender probes upwards step by step), one that loses
// much says less than arrives, and in between it holds its word.
#pragma once

#include <cstdint>
#include <vector>

namespace load {

struct EstimateRule {
  double light_loss = 0.02;  // below: the network carries what arrives, and more
  double heavy_loss = 0.10;  // from here: it carries less than arrives
  double headroom = 1.5;     // libwebrtc's cap over the incoming rate
  uint64_t ceiling = 30000000;  // bits/s, as a receiver's configured maximum
  // Nothing is said for this long after the start, ns. libwebrtc's receive-
  // side estimator sends its first estimate 5 s into the media, or sooner
  // on overuse, which it sees in packet delays; this emulation has no delay
  // measure, so it waits, and a server that takes an early estimate for
  // overuse (as ours does, gst/layers/layerchoice.h) is told no falsehood.
  int64_t quiet_ns = 5000000000;
};

// The estimate after one report interval, bits/s. `previous`: the one
// before (0: none yet); `received`: what arrived in the interval, bits/s;
// `loss`: the share of the interval's packets that never came (0-1).
//   loss < light_loss:  received x headroom
//   loss >= heavy_loss: received x (1 - loss / 2)
//   in between:         previous (or, without one, received)
// Never above the ceiling.
uint64_t next_estimate(uint64_t previous, uint64_t received, double loss, const EstimateRule &rule);

// One viewer's estimate, fed with its video's running totals at each
// regular receiver report.
class ReceiveEstimator {
 public:
  explicit ReceiveEstimator(const EstimateRule &rule) : rule_(rule) {}
  // Where the first interval starts (the transport connected), ns.
  void start(int64_t now) { started_at_ = last_at_ = now; }
  // Totals so far: bytes and packets received, packets expected from the
  // sequence numbers. An interval in which no packet was expected (video
  // paused, or not started) tells nothing and holds the estimate.
  void update(int64_t now, uint64_t bytes, uint64_t packets, int64_t expected);
  uint64_t estimate() const { return estimate_; }  // bits/s; 0: none yet
  // What to tell the sender at `now`: the estimate once the quiet start is
  // over, 0 (nothing) before.
  uint64_t to_send(int64_t now) const { return now - started_at_ >= rule_.quiet_ns ? estimate_ : 0; }

 private:
  EstimateRule rule_;
  int64_t started_at_ = 0;
  int64_t last_at_ = 0;
  uint64_t bytes_ = 0;
  uint64_t packets_ = 0;
  int64_t expected_ = 0;
  uint64_t estimate_ = 0;
};

// Appends a REMB (draft-alvestrand-rmcat-remb: PSFB, FMT 15, media SSRC 0,
// "REMB", the SSRC count, a 6-bit exponent and an 18-bit mantissa, then
// the SSRCs) to a compound packet. The mantissa keeps the top 18 bits, so
// the value read back is at most the estimate, never above it.
void append_remb(std::vector<uint8_t> *compound, uint32_t sender_ssrc, uint64_t bits_per_second,
                 const std::vector<uint32_t> &ssrcs);

}  // namespace load
