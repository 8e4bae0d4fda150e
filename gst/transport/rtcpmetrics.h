// What viewers tell us over RTCP, counted two ways: per transport (its
// get-viewer-stats) and summed over every transport a node ever had (its
// metrics), with the distributions of their receiver reports.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/histogram.h"
#include "transport/rtcp.h"

namespace wb {

struct RtcpCounts {
  uint64_t received = 0;      // SRTCP packets that authenticated
  uint64_t rejected = 0;      // SRTCP packets that did not (forged, or keys out of step)
  uint64_t pli = 0;           // PLI packets
  uint64_t fir = 0;           // FIR entries
  uint64_t nack_packets = 0;  // generic NACK packets
  uint64_t nacked_seqs = 0;   // sequence numbers those ask for, repeats included
};

// Shared by the transports of a node (which record, each on the thread it
// runs on) and the node (which reads).
class RtcpMetrics {
 public:
  void authenticated(bool ok) { (ok ? received_ : rejected_).fetch_add(1, std::memory_order_relaxed); }
  void feedback(const rtcp::Feedback &feedback);
  // A report block about one of our streams; `rtt` as rtcp::Reception's
  // (-1: the block measured none).
  void report(const rtcp::ReportBlock &block, uint32_t clock_rate, int64_t rtt);

  struct Snapshot {
    RtcpCounts counts;
    HistogramSnapshot loss;    // fraction lost, 0..1, per report block
    HistogramSnapshot jitter;  // seconds
    HistogramSnapshot rtt;     // seconds, per block that measured one
  };
  Snapshot snapshot() const;

 private:
  std::atomic<uint64_t> received_{0}, rejected_{0}, pli_{0}, fir_{0}, nack_packets_{0}, nacked_seqs_{0};
  Histogram loss_{buckets::kLossRatio};
  Histogram jitter_{buckets::kJitterSeconds};
  Histogram rtt_{buckets::kRoundTripSeconds};
};

// Adds what one parsed compound asked for to `counts`.
void count_feedback(const rtcp::Feedback &feedback, RtcpCounts *counts);

}  // namespace wb
