// A distribution kept the way Prometheus reads one: how many observations
// fell at or below each bound, their sum and their count. Recording is a
// few relaxed atomic adds, so the threads that see the events (an offer's
// worker, a shard at a viewer's first keyframe, the ICE-lite port at each
// receiver report) record where they are, and a scrape reads a snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace wb {

struct HistogramSnapshot {
  std::vector<double> bounds;        // upper bounds, ascending; +Inf is implied
  std::vector<uint64_t> cumulative;  // observations <= each bound, then all of them
  double sum = 0;
  uint64_t count() const { return cumulative.empty() ? 0 : cumulative.back(); }
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram &) = delete;
  Histogram &operator=(const Histogram &) = delete;

  void observe(double value);
  // Observations in flight may be missing from it; its count is always its
  // last bucket, as an exposition needs.
  HistogramSnapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bound, then above the last
  std::atomic<double> sum_{0};
};

// Bounds of the histograms a node keeps, in base units (seconds, ratios).
namespace buckets {
extern const std::vector<double> kAnswerSeconds;
extern const std::vector<double> kKeyframeWaitSeconds;
extern const std::vector<double> kRoundTripSeconds;
extern const std::vector<double> kJitterSeconds;
extern const std::vector<double> kLossRatio;
}  // namespace buckets

}  // namespace wb
