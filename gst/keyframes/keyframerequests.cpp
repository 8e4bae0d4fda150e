#include "keyframerequests.h"

#include <algorithm>

namespace wb {

void KeyframeRequests::set_min_interval(std::chrono::milliseconds interval) {
  std::lock_guard<std::mutex> lock(mutex_);
  min_interval_ = interval;
}

std::chrono::milliseconds KeyframeRequests::min_interval() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return min_interval_;
}

bool KeyframeRequests::send_locked(Clock::time_point now) {
  if (sent_before_ && now - last_sent_ < min_interval_) return false;
  sent_before_ = true;
  last_sent_ = now;
  pending_ = false;
  ++sent_;
  return true;
}

bool KeyframeRequests::viewer_may_ask_locked(Requester viewer, Clock::time_point now) {
  Backoff &b = viewers_[viewer];
  if (b.interval.count() && now - b.last_request >= kViewerQuiet) b.interval = {};
  b.last_request = now;
  if (b.interval.count() && now < b.next_allowed) return false;
  b.interval = b.interval.count() ? std::min(b.interval * 2, kViewerMaxBackoff) : kViewerFirstBackoff;
  b.next_allowed = now + b.interval;
  return true;
}

bool KeyframeRequests::request(Clock::time_point now, Requester from) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++received_;
  if (from && !exempt_.count(from) && !viewer_may_ask_locked(from, now)) {
    ++refused_;
    return false;
  }
  if (send_locked(now)) return true;
  pending_ = true;
  return false;
}

bool KeyframeRequests::due(Clock::time_point now, bool viewers_waiting) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (viewers_waiting) pending_ = true;
  return pending_ && send_locked(now);
}

void KeyframeRequests::keyframe_sent() {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_ = false;
}

uint64_t KeyframeRequests::requests_received() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return received_;
}

void KeyframeRequests::exempt(Requester viewer) {
  std::lock_guard<std::mutex> lock(mutex_);
  exempt_.insert(viewer);
  viewers_.erase(viewer);
}

void KeyframeRequests::forget(Requester viewer) {
  std::lock_guard<std::mutex> lock(mutex_);
  viewers_.erase(viewer);
  exempt_.erase(viewer);
}

uint64_t KeyframeRequests::requests_refused() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return refused_;
}

uint64_t KeyframeRequests::requests_sent_upstream() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sent_;
}

}  // namespace wb
