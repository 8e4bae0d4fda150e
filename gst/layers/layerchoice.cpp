#include "layerchoice.h"

#include <algorithm>
#include <numeric>

namespace wb {

namespace {

// The highest-rate layer no higher than `limit` bits/s, or the lowest-rate
// layer when none is; kMaxLayers when there is no layer at all.
unsigned best_under(const LayerChoice::Rates &rates, double limit) {
  unsigned best = kMaxLayers, lowest = kMaxLayers;
  for (unsigned i = 0; i < kMaxLayers; ++i) {
    if (!rates[i]) continue;
    if (lowest == kMaxLayers || rates[i] < rates[lowest]) lowest = i;
    if (rates[i] <= limit && (best == kMaxLayers || rates[i] > rates[best])) best = i;
  }
  return best != kMaxLayers ? best : lowest;
}

// The lowest-rate layer above `current`, or kMaxLayers.
unsigned next_up(const LayerChoice::Rates &rates, unsigned current) {
  unsigned up = kMaxLayers;
  for (unsigned i = 0; i < kMaxLayers; ++i)
    if (rates[i] > rates[current] && (up == kMaxLayers || rates[i] < rates[up])) up = i;
  return up;
}

}  // namespace

unsigned LayerChoice::start(const Rates &rates, unsigned first, uint64_t start_bitrate) {
  if (!start_bitrate || first >= kMaxLayers || !rates[first] || rates[first] <= start_bitrate) return first;
  return best_under(rates, double(start_bitrate));
}

LayerChoice::Rates LayerChoice::in_peak_order(const Rates &now, const Rates &peaks) {
  std::array<unsigned, kMaxLayers> by_peak;
  std::iota(by_peak.begin(), by_peak.end(), 0u);
  std::stable_sort(by_peak.begin(), by_peak.end(), [&](unsigned a, unsigned b) { return peaks[a] < peaks[b]; });
  Rates ordered = now;
  uint64_t below = 0;  // the highest rate of the layers with a lower peak
  for (unsigned i : by_peak) {
    if (!now[i]) continue;
    if (below && ordered[i] <= below) ordered[i] = below + 1;
    below = ordered[i];
  }
  return ordered;
}

void LayerChoice::on_start(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  started_ = now;
}

void LayerChoice::on_estimate(Clock::time_point now, uint64_t bits_per_second) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!remb_ && started_ != Clock::time_point{} && now - started_ < config_.overuse_before) early_at_ = now;
  if (bits_per_second < remb_ * 0.95) remb_fell_ = true;
  // The receiver saw its delay grow under the padding: the link is full.
  if (padding_for_ != kMaxLayers && bits_per_second < remb_at_padding_ * 0.95) padding_failed_ = true;
  remb_ = bits_per_second;
  remb_at_ = now;
}

double LayerChoice::LossWindow::add(Clock::time_point now, int32_t cumulative_lost, uint32_t highest_seq,
                                    uint64_t nacked_total, std::chrono::milliseconds span) {
  if (!started || int32_t(highest_seq - highest) < 0) {  // the first, or a restart of the stream's counts
    *this = {true, cumulative_lost, highest_seq, nacked_total, now};
    return -1;
  }
  if (now - since < span) return -1;
  const double expected = double(highest_seq - highest);
  const double lost_now = std::max(double(cumulative_lost - lost), double(nacked_total - nacked));
  *this = {true, cumulative_lost, highest_seq, nacked_total, now};
  if (expected <= 0) return -1;
  return std::clamp(lost_now / expected, 0.0, 1.0);
}

void LayerChoice::on_nack(const std::vector<uint16_t> &seqs) {
  std::lock_guard<std::mutex> lock(mutex_);
  // A receiver asks again for what is still missing: only numbers past the
  // newest it asked for before are new losses.
  for (uint16_t seq : seqs) {
    if (any_nacked_ && int16_t(uint16_t(seq - newest_nacked_)) <= 0) continue;
    any_nacked_ = true;
    newest_nacked_ = seq;
    ++nacked_;
  }
}

void LayerChoice::on_video_report(Clock::time_point now, int32_t cumulative_lost, uint32_t highest_seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  const double loss = video_window_.add(now, cumulative_lost, highest_seq, nacked_, config_.loss_window);
  if (loss >= 0) on_loss_locked(now, loss);
}

void LayerChoice::on_padding_report(Clock::time_point now, int32_t cumulative_lost, uint32_t highest_seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Shorter windows: padding is dense, and a probe must end quickly.
  const double loss = padding_window_.add(now, cumulative_lost, highest_seq, 0, config_.loss_window / 2);
  if (loss >= 0) on_padding_loss_locked(loss);
}

void LayerChoice::on_round_trip(Clock::time_point now, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (seconds < 0) return;
  rtt_last_ = seconds;
  if (rtt_min_ < 0 || now - rtt_bucket_since_ >= std::chrono::seconds(5)) {
    rtt_min_before_ = rtt_min_;
    rtt_min_ = seconds;
    rtt_bucket_since_ = now;
  } else {
    rtt_min_ = std::min(rtt_min_, seconds);
  }
  if (padding_for_ == kMaxLayers || rtt_at_padding_ < 0) return;
  const double over = seconds - rtt_at_padding_;
  const bool rising = now - padding_since_ < config_.padding_ramp + config_.loss_window;
  if (over > (rising ? config_.padding_delay : config_.padding_delay_held)) {
    padding_failed_ = true;
  } else if (over <= config_.padding_burst) {
    rtt_over_since_ = {};
  } else if (rtt_over_since_ == Clock::time_point{}) {
    rtt_over_since_ = now;
  } else if (now - rtt_over_since_ >= config_.padding_burst_for) {
    padding_failed_ = true;
  }
}

void LayerChoice::on_padding_loss(Clock::time_point, double fraction_lost) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_padding_loss_locked(fraction_lost);
}

void LayerChoice::on_padding_loss_locked(double fraction_lost) {
  if (padding_for_ != kMaxLayers && fraction_lost >= config_.padding_loss) padding_failed_ = true;
}

void LayerChoice::on_loss(Clock::time_point now, double fraction_lost) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_loss_locked(now, fraction_lost);
}

void LayerChoice::on_loss_locked(Clock::time_point now, double fraction_lost) {
  // Loss while padding, or just after it, is the padding's doing: it ends
  // the probe, and says nothing of the layer.
  if (padding_for_ != kMaxLayers) {
    if (fraction_lost >= config_.padding_loss) padding_failed_ = true;
    return;
  }
  if (padding_ended_ != Clock::time_point{} && now - padding_ended_ < config_.settle) return;
  // Just after a move down, reports describe the layer before it (the
  // link's queue still drains): not evidence about this one.
  if (last_move_ != Clock::time_point{} && last_down_ == last_move_ && now - last_move_ < config_.settle) return;
  last_loss_ = fraction_lost;
  heavy_in_a_row_ = fraction_lost >= config_.heavy_loss ? heavy_in_a_row_ + 1 : 0;
  if (heavy_in_a_row_ >= config_.heavy_reports || (probing_locked(now) && fraction_lost >= config_.probe_loss))
    too_much_ = true;
}

double LayerChoice::rtt_floor_locked() const {
  return rtt_min_before_ >= 0 ? std::min(rtt_min_, rtt_min_before_) : rtt_min_;
}

bool LayerChoice::probing_locked(Clock::time_point now) const {
  return last_move_ != Clock::time_point{} && last_up_ == last_move_ && now - last_move_ < config_.probe_judged;
}

uint64_t LayerChoice::estimate_locked(Clock::time_point now) const {
  if (!remb_ || now - remb_at_ > config_.estimate_valid) return 0;
  return remb_;
}

uint64_t LayerChoice::estimate(Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return estimate_locked(now);
}

void LayerChoice::end_padding_locked(Clock::time_point now, bool failed) {
  // How much of the ramp the link was seen to carry: one that failed early
  // is far from the next layer, and is probed less often.
  const bool near_miss = padding_carried_ >= padding_full_ / 3;
  padding_for_ = kMaxLayers;
  padding_ = 0;
  padding_failed_ = false;
  padding_ended_ = now;
  remb_fell_ = false;
  if (!failed) return;
  ++padding_failures_;
  const auto most = near_miss ? config_.max_padding_backoff : config_.max_padding_backoff_far;
  padding_backoff_ = std::min(most, std::max(config_.padding_backoff, padding_backoff_ * 2));
  next_padding_ = now + padding_backoff_;
  calm_ = false;
}

unsigned LayerChoice::pad_locked(Clock::time_point now, const Rates &rates, unsigned current) {
  if (padding_failed_ || current >= kMaxLayers || !rates[current] || rates[padding_for_] <= rates[current]) {
    end_padding_locked(now, true);
    return current;
  }
  // This report did not fail it: the link carried what was sent before.
  padding_carried_ = padding_;
  const auto elapsed = now - padding_since_;
  if (elapsed >= config_.padding_ramp + config_.padding_hold) {
    const unsigned passed = padding_for_;
    end_padding_locked(now, false);
    padding_backoff_ = std::chrono::milliseconds(0);
    // What follows is the switch's: its loss must count (a switch that does
    // not fit is judged in its first seconds, as any move up).
    padding_ended_ = Clock::time_point{};
    return passed;
  }
  // From a tenth of the way at once (the first report comes 0.2-1 s later):
  // a link that cannot take even that says so before the full excess.
  const double share = std::clamp(std::chrono::duration<double>(elapsed).count() /
                                      std::chrono::duration<double>(config_.padding_ramp).count(),
                                  0.1, 1.0);
  const double top = double(rates[padding_for_]) * config_.padding_over - double(rates[current]);
  padding_full_ = top > 0 ? uint64_t(top) : 0;
  padding_ = uint64_t(double(padding_full_) * share);
  return current;
}

unsigned LayerChoice::choose(Clock::time_point now, const Rates &rates, unsigned current,
                             const std::function<uint64_t()> &padding_room) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool paused = current == kPaused;
  if (pinned_ || (!paused && (current >= kMaxLayers || !rates[current]))) {
    if (padding_for_ != kMaxLayers) end_padding_locked(now, false);
    return current;
  }
  const unsigned lowest = best_under(rates, 0);
  if (lowest == kMaxLayers) return current;
  unsigned want = current;
  if (padding_for_ != kMaxLayers) {
    // Nothing else is decided while the padding is judged.
    want = pad_locked(now, rates, current);
    if (want == current) return current;
  }
  const uint64_t estimate = estimate_locked(now);
  const double rate = paused ? 0 : double(rates[current]);
  // Just after padding, a falling estimate was the padding's.
  const bool after_padding = padding_ended_ != Clock::time_point{} && now - padding_ended_ < config_.settle;
  const bool under = !paused && !after_padding && estimate && estimate < rate * config_.congested;
  const double rtt_floor = rtt_floor_locked();
  const bool link_full =
      last_loss_ > config_.light_loss || (rtt_floor >= 0 && rtt_last_ > rtt_floor + config_.queue_grew);
  const bool overuse_at_start = early_at_ != Clock::time_point{} && now - early_at_ < config_.overuse_judged &&
                                !paused && !after_padding && estimate &&
                                estimate < rate * config_.congested_at_start && link_full;
  if (under && remb_fell_ && !congested_) {
    congested_ = true;
    congested_since_ = now;
  }
  if (!under) congested_ = false;
  const auto hold = last_loss_ > config_.light_loss ? config_.congested_for : config_.congested_without_loss_for;
  if (want != current) {
    // The padding probe passed: up.
  } else if (!paused && (too_much_ || overuse_at_start || (congested_ && now - congested_since_ >= hold))) {
    // An estimate from an overuse at the start is already 85 % of what the
    // link carried: no headroom on top.
    const double fits = overuse_at_start ? 1.0 : config_.headroom;
    want = estimate ? best_under(rates, estimate * fits) : current;
    if (too_much_) {
      // Loss says this layer is too much, whatever the estimate; and what
      // arrives of it is what the link carried. Without that, a viewer that
      // joined on the top layer before its first REMB went down one layer
      // at a time, seconds on each (browser-layers: 3.8 s on a 500 kbit/s
      // layer through a 500 kbit/s link before the lowest).
      const unsigned arrives = best_under(rates, rate * (1 - last_loss_) * config_.headroom);
      if (rates[arrives] < rates[want]) want = arrives;
      if (rates[want] >= rates[current]) want = best_under(rates, rate - 1);
    }
    // A failed probe goes back to the layer it left, which fitted for the
    // seconds of calm before it: the estimate (which cannot say more than
    // arrives, and arrivals fall as the probe loses) would drop it lower.
    // Seen with generated viewers on 1 Mbit/s links (docs/layer-groups.md):
    // a failed probe of the top layer fell to the lowest, and climbed again.
    const bool probing = last_up_ != Clock::time_point{} && now - last_up_ < config_.failed_probe;
    if (probing && probed_from_ < kMaxLayers && rates[probed_from_] && rates[probed_from_] < rates[current] &&
        rates[probed_from_] > rates[want])
      want = probed_from_;
    // Nothing lower: no video, if even the lowest is far beyond the
    // estimate and loses, or loses heavily and the estimate does not say it
    // fits, or loses heavily for long whatever the estimate says. Never on
    // the estimate alone: after a move down the receiver's estimate can
    // collapse (the new layer's keyframe arrives as a burst into a link
    // still draining, and is measured against what arrived during the
    // switch) and climbs back some 8 % a second; seen in CI, 5 kbit/s under
    // a lowest layer that arrived whole, which paused it for 50 s.
    const double lowest_rate = double(rates[lowest]);
    if (rates[want] >= rates[current] &&
        ((estimate && estimate < lowest_rate * config_.pause_under && last_loss_ > config_.light_loss) ||
         (too_much_ && (!estimate || estimate < lowest_rate * config_.congested)) ||
         heavy_in_a_row_ >= 2 * config_.heavy_reports))
      want = kPaused;
    calm_ = false;
  } else {
    const unsigned up = paused ? lowest : next_up(rates, current);
    if (up == kMaxLayers || last_loss_ > config_.light_loss) {
      calm_ = false;
    } else if (!calm_) {
      calm_ = true;
      calm_since_ = now;
    } else if (!paused && config_.padding) {
      // Probed with padding: cheap when it fails, so no long wait after a
      // move down, unless it was a switch that failed after padding passed.
      if (now - calm_since_ >= config_.padding_after && now >= next_padding_ &&
          (!last_down_was_failed_switch_ || now - last_down_ >= backoff_) &&
          (!padding_room || double(rates[up]) * config_.padding_over - rate <= double(padding_room()))) {
        padding_for_ = up;
        padding_since_ = now;
        padding_failed_ = false;
        remb_at_padding_ = estimate;
        rtt_at_padding_ = rtt_floor_locked();
        rtt_over_since_ = {};
        padding_window_ = {};
        padding_ = padding_carried_ = 0;
        ++padding_probes_;
        pad_locked(now, rates, current);
      }
    } else if (now - calm_since_ >= config_.up_after && now - last_down_ >= backoff_) {
      want = up;
    }
  }
  too_much_ = false;
  remb_fell_ = false;
  if (want == current) return current;
  early_at_ = {};
  ++moves_;
  last_move_ = now;
  last_loss_ = 0;
  calm_ = false;
  congested_ = false;
  heavy_in_a_row_ = 0;
  const bool down = want == kPaused || (!paused && rates[want] < rates[current]);
  if (down) {
    const bool failed_probe = last_up_ != Clock::time_point{} && now - last_up_ < config_.failed_probe;
    backoff_ = failed_probe ? std::min(config_.max_backoff, std::max(config_.up_backoff, backoff_ * 2))
                            : config_.up_backoff;
    last_down_was_failed_switch_ = failed_probe;
    last_down_ = now;
  } else {
    last_up_ = now;
    probed_from_ = current;  // kPaused when resuming: nothing to go back to
  }
  return want;
}

void LayerChoice::pin(bool pinned) {
  std::lock_guard<std::mutex> lock(mutex_);
  pinned_ = pinned;
}

bool LayerChoice::pinned() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pinned_;
}

unsigned LayerChoice::moves() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return moves_;
}

uint64_t LayerChoice::padding() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return padding_;
}

uint64_t LayerChoice::padding_full() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return padding_for_ != kMaxLayers ? padding_full_ : 0;
}

unsigned LayerChoice::padding_probes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return padding_probes_;
}

unsigned LayerChoice::padding_probes_failed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return padding_failures_;
}

}  // namespace wb
