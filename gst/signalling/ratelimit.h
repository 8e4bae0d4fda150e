// Offers per second per source address: a token bucket per address, so a
// single host cannot fill the node with pending viewers while others still
// get in. A policy of the time it is given, unit-tested without a clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace wb {

class RateLimit {
 public:
  // `per_second` sustained, bursts up to `burst`; per_second 0: no limit.
  RateLimit(double per_second, double burst);

  // Takes one token of `key`'s bucket at `now_us` (monotonic). When none is
  // left, false, and `*retry_after_s` is when the next one will be there.
  bool allow(const std::string &key, int64_t now_us, unsigned *retry_after_s);

  size_t tracked() const { return buckets_.size(); }
  // Addresses tracked at most; full buckets are forgotten first.
  static constexpr size_t kMaxTracked = 16384;

 private:
  struct Bucket {
    double tokens;
    int64_t updated_us;
  };
  void forget_idle(int64_t now_us);

  const double per_second_;
  const double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace wb
