// One policy for asking the encoder (or the upstream relay) for a keyframe.
//
// Many viewers joining or sending PLI/FIR at once must cost the encoder at
// most one keyframe per min_interval: requests are coalesced here and
// nowhere else. And one viewer that keeps asking (a network that cannot
// carry the stream loses every keyframe it is sent) must not cost everyone
// else a keyframe each time: each viewer's own requests back off (1 s after
// one is passed on, then 2, 4... up to 32 s, back to nothing after 30 s of
// quiet); what it asks for meanwhile is refused, and the stream's own
// keyframes still reach it. Joins, waiting viewers, relay children and the push (whose
// requests are their own viewers' joins) are not limited.
// Time is passed in so the policy is testable without sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace wb {

class KeyframeRequests {
 public:
  using Clock = std::chrono::steady_clock;

  explicit KeyframeRequests(std::chrono::milliseconds min_interval = std::chrono::milliseconds(250))
      : min_interval_(min_interval) {}

  void set_min_interval(std::chrono::milliseconds interval);
  std::chrono::milliseconds min_interval() const;

  // Who asks: a viewer's subscriber id, or 0 for the node itself (a join,
  // the application).
  using Requester = uint64_t;
  static constexpr std::chrono::milliseconds kViewerFirstBackoff{1000};
  static constexpr std::chrono::milliseconds kViewerMaxBackoff{32000};
  static constexpr std::chrono::milliseconds kViewerQuiet{30000};

  // A keyframe is needed (a viewer joined, or sent PLI/FIR). Returns true
  // when the caller must send one upstream request now; otherwise the
  // request is remembered and due() reports it once the interval has passed,
  // unless it came from a viewer still in its back-off: then it is refused.
  bool request(Clock::time_point now, Requester from = 0);
  // A relay child: its requests are its viewers' joins, never backed off.
  void exempt(Requester viewer);
  // The viewer left: its back-off goes with it.
  void forget(Requester viewer);

  // Called as packets flow: true when a remembered request is now due. While
  // viewers still wait for a keyframe the request stays remembered, so an
  // encoder that ignored one request is asked again one interval later.
  bool due(Clock::time_point now, bool viewers_waiting);

  // A keyframe went out to viewers: remembered requests are satisfied.
  void keyframe_sent();

  uint64_t requests_received() const;
  uint64_t requests_sent_upstream() const;
  uint64_t requests_refused() const;  // viewers' requests within their back-off

 private:
  bool send_locked(Clock::time_point now);
  struct Backoff {
    Clock::time_point last_request{};
    Clock::time_point next_allowed{};
    std::chrono::milliseconds interval{0};
  };
  // False when the viewer is still in its back-off.
  bool viewer_may_ask_locked(Requester viewer, Clock::time_point now);

  mutable std::mutex mutex_;
  std::chrono::milliseconds min_interval_;
  bool sent_before_ = false;
  bool pending_ = false;
  Clock::time_point last_sent_{};
  uint64_t received_ = 0;
  uint64_t sent_ = 0;
  uint64_t refused_ = 0;
  std::unordered_map<Requester, Backoff> viewers_;
  std::unordered_set<Requester> exempt_;
};

}  // namespace wb
