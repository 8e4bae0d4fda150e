// Reconnection delays: 1 s, doubling up to 30 s, back to 1 s once a
// session delivered media. One policy for relay pulls and WHIP pushes.
#pragma once

#include <algorithm>
#include <chrono>

namespace wb {

class Backoff {
 public:
  using ms = std::chrono::milliseconds;
  explicit Backoff(ms first = ms(1000), ms max = ms(30000)) : first_(first), max_(max), next_(first) {}

  ms next() {
    ms now = next_;
    next_ = std::min(next_ * 2, max_);
    return now;
  }
  void reset() { next_ = first_; }

 private:
  ms first_, max_, next_;
};

}  // namespace wb
