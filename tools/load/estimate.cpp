#include "estimate.h"

#include <algorithm>

namespace load {

namespace {

constexpr uint8_t kPayloadFeedback = 206;
constexpr uint8_t kAppFormat = 15;
constexpr uint64_t kMantissaLimit = uint64_t(1) << 18;
constexpr double kNsPerSecond = 1e9;  // the generator's clock

void put32(std::vector<uint8_t> *v, uint32_t x) {
  for (int shift = 24; shift >= 0; shift -= 8) v->push_back(uint8_t(x >> shift));
}

}  // namespace

uint64_t next_estimate(uint64_t previous, uint64_t received, double loss, const EstimateRule &rule) {
  double estimate;
  if (loss < rule.light_loss)
    estimate = double(received) * rule.headroom;
  else if (loss >= rule.heavy_loss)
    estimate = double(received) * (1 - 0.5 * std::min(loss, 1.0));
  else
    estimate = double(previous ? previous : received);
  return std::min(uint64_t(estimate), rule.ceiling);
}

void ReceiveEstimator::update(int64_t now, uint64_t bytes, uint64_t packets, int64_t expected) {
  const int64_t elapsed = now - last_at_;
  const int64_t expected_now = expected - expected_;
  if (elapsed <= 0) return;
  if (expected_now > 0) {
    // Duplicates can make more arrive than was expected: that is no loss.
    const double lost = double(std::max<int64_t>(0, expected_now - int64_t(packets - packets_)));
    const uint64_t received = uint64_t(double(bytes - bytes_) * 8 * kNsPerSecond / double(elapsed));
    estimate_ = next_estimate(estimate_, received, lost / double(expected_now), rule_);
  }
  last_at_ = now;
  bytes_ = bytes;
  packets_ = packets;
  expected_ = expected;
}

void append_remb(std::vector<uint8_t> *compound, uint32_t sender_ssrc, uint64_t bits_per_second,
                 const std::vector<uint32_t> &ssrcs) {
  const size_t count = std::min<size_t>(ssrcs.size(), 255);
  unsigned exponent = 0;
  while ((bits_per_second >> exponent) >= kMantissaLimit) ++exponent;
  const uint64_t mantissa = bits_per_second >> exponent;
  compound->push_back(0x80 | kAppFormat);  // version 2, no padding
  compound->push_back(kPayloadFeedback);
  const size_t words = 4 + count;  // after the header: 2 SSRCs, "REMB", the rate word, the SSRCs
  compound->push_back(uint8_t(words >> 8));
  compound->push_back(uint8_t(words));
  put32(compound, sender_ssrc);
  put32(compound, 0);  // media source: unused, always 0
  compound->insert(compound->end(), {'R', 'E', 'M', 'B'});
  put32(compound, uint32_t(count) << 24 | uint32_t(exponent) << 18 | uint32_t(mantissa));
  for (size_t i = 0; i < count; ++i) put32(compound, ssrcs[i]);
}

}  // namespace load
