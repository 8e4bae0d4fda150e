#include "ratelimit.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <vector>

namespace wb {

RateLimit::RateLimit(double per_second, double burst) : per_second_(per_second), burst_(std::max(1.0, burst)) {}

bool RateLimit::allow(const std::string &key, int64_t now_us, unsigned *retry_after_s) {
  if (per_second_ <= 0) return true;
  if (buckets_.size() >= kMaxTracked && !buckets_.count(key)) forget_idle(now_us);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) it = buckets_.emplace(key, Bucket{burst_, now_us}).first;
  Bucket &b = it->second;
  b.tokens = std::min(burst_, b.tokens + double(now_us - b.updated_us) / 1e6 * per_second_);
  b.updated_us = now_us;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  if (retry_after_s) *retry_after_s = unsigned(std::ceil((1.0 - b.tokens) / per_second_));
  return false;
}

// A bucket refilled to the brim says nothing that a new one would not: drop
// those. If every tracked address is busy, the oldest half goes: memory
// stays bounded even when a flood comes from many addresses.
void RateLimit::forget_idle(int64_t now_us) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double tokens = it->second.tokens + double(now_us - it->second.updated_us) / 1e6 * per_second_;
    it = tokens >= burst_ ? buckets_.erase(it) : std::next(it);
  }
  if (buckets_.size() < kMaxTracked) return;
  std::vector<int64_t> times;
  for (const auto &b : buckets_) times.push_back(b.second.updated_us);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  const int64_t median = times[times.size() / 2];
  for (auto it = buckets_.begin(); it != buckets_.end();)
    it = it->second.updated_us <= median ? buckets_.erase(it) : std::next(it);
}

}  // namespace wb
