#include "transport/rtcpmetrics.h"

namespace wb {

void count_feedback(const rtcp::Feedback &feedback, RtcpCounts *counts) {
  counts->pli += feedback.pli.size();
  counts->fir += feedback.fir.size();
  counts->nack_packets += feedback.nacks.size();
  for (const auto &nack : feedback.nacks) counts->nacked_seqs += nack.seqs.size();
}

void RtcpMetrics::feedback(const rtcp::Feedback &feedback) {
  RtcpCounts c;
  count_feedback(feedback, &c);
  if (c.pli) pli_.fetch_add(c.pli, std::memory_order_relaxed);
  if (c.fir) fir_.fetch_add(c.fir, std::memory_order_relaxed);
  if (c.nack_packets) {
    nack_packets_.fetch_add(c.nack_packets, std::memory_order_relaxed);
    nacked_seqs_.fetch_add(c.nacked_seqs, std::memory_order_relaxed);
  }
}

void RtcpMetrics::report(const rtcp::ReportBlock &block, uint32_t clock_rate, int64_t rtt) {
  loss_.observe(block.fraction_lost / 256.0);
  if (clock_rate) jitter_.observe(double(block.jitter) / clock_rate);
  if (rtt >= 0) rtt_.observe(double(rtt) / 65536.0);
}

RtcpMetrics::Snapshot RtcpMetrics::snapshot() const {
  Snapshot s;
  s.counts.received = received_.load(std::memory_order_relaxed);
  s.counts.rejected = rejected_.load(std::memory_order_relaxed);
  s.counts.pli = pli_.load(std::memory_order_relaxed);
  s.counts.fir = fir_.load(std::memory_order_relaxed);
  s.counts.nack_packets = nack_packets_.load(std::memory_order_relaxed);
  s.counts.nacked_seqs = nacked_seqs_.load(std::memory_order_relaxed);
  s.loss = loss_.snapshot();
  s.jitter = jitter_.snapshot();
  s.rtt = rtt_.snapshot();
  return s;
}

}  // namespace wb
