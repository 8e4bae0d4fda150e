// One policy for asking the encoder (or the upstream relay) for a keyframe.
//
// Many viewers joining or sending PLI/FIR at once must cost the encoder at
// most one keyframe per min_interval: requests are coalesced here and
// nowhere else. Time is passed in so the policy is testable without sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace wb {

class KeyframeRequests {
 public:
  using Clock = std::chrono::steady_clock;

  explicit KeyframeRequests(std::chrono::milliseconds min_interval = std::chrono::milliseconds(250))
      : min_interval_(min_interval) {}

  void set_min_interval(std::chrono::milliseconds interval);
  std::chrono::milliseconds min_interval() const;

  // A viewer needs a keyframe (it joined, or sent PLI/FIR). Returns true when
  // the caller must send one upstream request now; otherwise the request is
  // remembered and due() reports it once the interval has passed.
  bool request(Clock::time_point now);

  // Called as packets flow: true when a remembered request is now due. While
  // viewers still wait for a keyframe the request stays remembered, so an
  // encoder that ignored one request is asked again one interval later.
  bool due(Clock::time_point now, bool viewers_waiting);

  // A keyframe went out to viewers: remembered requests are satisfied.
  void keyframe_sent();

  uint64_t requests_received() const;
  uint64_t requests_sent_upstream() const;

 private:
  bool send_locked(Clock::time_point now);

  mutable std::mutex mutex_;
  std::chrono::milliseconds min_interval_;
  bool sent_before_ = false;
  bool pending_ = false;
  Clock::time_point last_sent_{};
  uint64_t received_ = 0;
  uint64_t sent_ = 0;
};

}  // namespace wb
