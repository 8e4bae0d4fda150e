#include "common/histogram.h"

#include <algorithm>

namespace wb {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) {
  // The first bound not below the value: "le" is inclusive.
  const size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) s.cumulative[i] = running += counts_[i].load(std::memory_order_relaxed);
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

namespace buckets {
// An answer takes a few ms on the ICE-lite port, up to the answer timeout
// (5 s) with a webrtcbin of its own.
const std::vector<double> kAnswerSeconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
// Up to a keyframe interval, longer when the encoder ignores requests.
const std::vector<double> kKeyframeWaitSeconds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8};
const std::vector<double> kRoundTripSeconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
const std::vector<double> kJitterSeconds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25};
// RFC 3550's fraction lost is in 1/256: 0 is its own bucket.
const std::vector<double> kLossRatio = {0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1};
}  // namespace buckets

}  // namespace wb
